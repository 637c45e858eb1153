package guestconfig

import (
	"bytes"
	"fmt"
	"net/netip"

	"go.yaml.in/yaml/v3"

	"github.com/znet/znet/api"
)

// DefaultID is the key of the NIC under "ethernets" when the caller names
// none: the name the guest's own tools show for the configuration.
const DefaultID = "znet0"

// Options shape the rendering.
type Options struct {
	// ID is the NIC's key under "ethernets" (default DefaultID).
	ID string
	// SetName, when set, renames the matched NIC in the guest.
	SetName string
}

// Config is cloud-init network-config version 2, as far as znet fills it.
// Field order is the order of the YAML.
type Config struct {
	Network Network `yaml:"network"`
}

// Network is the "network" key.
type Network struct {
	Version   int                 `yaml:"version"`
	Ethernets map[string]Ethernet `yaml:"ethernets"`
}

// Ethernet is one NIC.
type Ethernet struct {
	Match       Match       `yaml:"match"`
	SetName     string      `yaml:"set-name,omitempty"`
	DHCP4       bool        `yaml:"dhcp4"`
	DHCP6       bool        `yaml:"dhcp6"`
	AcceptRA    bool        `yaml:"accept-ra"`
	Addresses   []string    `yaml:"addresses"`
	MTU         int         `yaml:"mtu,omitempty"`
	Routes      []Route     `yaml:"routes,omitempty"`
	Nameservers Nameservers `yaml:"nameservers"`
}

// Match selects the NIC by its MAC.
type Match struct {
	MACAddress string `yaml:"macaddress"`
}

// Route is one static route.
type Route struct {
	To  string `yaml:"to"`
	Via string `yaml:"via"`
}

// Nameservers is the resolver and the search domain.
type Nameservers struct {
	Addresses []string `yaml:"addresses"`
	Search    []string `yaml:"search,omitempty"`
}

// Build returns the configuration of a's guest. It refuses an attachment
// without a MAC or an address, which no guest could be configured from.
func Build(a api.Attachment, o Options) (Config, error) {
	switch {
	case a.MAC == "":
		return Config{}, fmt.Errorf("the workload has no MAC (attached before znet recorded MACs?)")
	case !a.IPv4.IsValid() || !a.Subnet.IsValid():
		return Config{}, fmt.Errorf("the workload has no IPv4 address and subnet")
	}
	e := Ethernet{
		Match:     Match{MACAddress: a.MAC},
		SetName:   o.SetName,
		Addresses: []string{prefixOf(a.IPv4, a.Subnet)},
		MTU:       a.MTU,
	}
	if a.IPv6.IsValid() && a.Subnet6.IsValid() {
		e.Addresses = append(e.Addresses, prefixOf(a.IPv6, a.Subnet6))
	}
	for _, r := range a.Routes {
		e.Routes = append(e.Routes, Route{To: r.To.String(), Via: r.Via.String()})
	}
	for _, d := range a.DNS {
		e.Nameservers.Addresses = append(e.Nameservers.Addresses, d.String())
	}
	if a.Domain != "" {
		e.Nameservers.Search = []string{a.Domain}
	}
	id := o.ID
	if id == "" {
		id = DefaultID
	}
	return Config{Network: Network{Version: 2, Ethernets: map[string]Ethernet{id: e}}}, nil
}

// prefixOf writes addr with the length of its on-link subnet.
func prefixOf(addr netip.Addr, subnet netip.Prefix) string {
	return netip.PrefixFrom(addr, subnet.Bits()).String()
}

// Render returns the YAML of Build(a, o).
func Render(a api.Attachment, o Options) ([]byte, error) {
	c, err := Build(a, o)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encoding network-config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding network-config: %w", err)
	}
	return buf.Bytes(), nil
}
