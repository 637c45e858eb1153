package firewall

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/znet/znet/internal/linkname"
)

// ErrInvalid is returned (wrapped) by Apply and Remove when the Rules or the
// namespace handle cannot be used: an empty or too long interface name, a
// name used twice, an address of the wrong family, or a handle that is not
// an open file descriptor.
var ErrInvalid = errors.New("invalid firewall rules")

// tableName is the name of znet's tables in both families.
const tableName = "znet"

// ifNameSize is IFNAMSIZ: interface names are at most 15 bytes plus NUL.
const ifNameSize = 16

// Port is one workload's veth port on the bridge and the addresses it may
// send from. A zero IPv4 or IPv6 address means the workload may not send
// from any address of that family (IPv6 link-local and :: stay allowed).
type Port struct {
	IfName string
	IPv4   netip.Addr
	IPv6   netip.Addr
	// MAC, when set ("02:11:22:33:44:55"), pins the port: frames and ARP
	// from any other source MAC are dropped, and its only IPv6 link-local
	// source is the EUI-64 address of MAC. Empty keeps any MAC and all of
	// fe80::/10. A string keeps Port comparable.
	MAC string
}

// Rules describes one network namespace's isolation.
type Rules struct {
	Bridge  string // the workloads' bridge
	Overlay string // the WireGuard device
	Ports   []Port
	// AccessPeers are the addresses of this node's access peers: nothing
	// may open a connection to them; their own connections are answered.
	AccessPeers []netip.Addr
	// Egress is the network's way out on this node; nil means none.
	Egress *Egress
}

// normalized returns a copy of r with addresses unmapped and ports sorted
// by interface name, so equal rule sets render and install identically
// whatever order the caller lists the ports in.
func (r Rules) normalized() Rules {
	out := Rules{Bridge: r.Bridge, Overlay: r.Overlay, Ports: make([]Port, len(r.Ports))}
	for i, p := range r.Ports {
		out.Ports[i] = Port{IfName: p.IfName, IPv4: p.IPv4.Unmap(), IPv6: p.IPv6, MAC: p.MAC}
		if mac, err := net.ParseMAC(p.MAC); err == nil {
			out.Ports[i].MAC = mac.String() // one spelling: lower case, colons
		}
	}
	slices.SortFunc(out.Ports, func(a, b Port) int { return cmp.Compare(a.IfName, b.IfName) })
	for _, a := range r.AccessPeers {
		out.AccessPeers = append(out.AccessPeers, a.Unmap())
	}
	slices.SortFunc(out.AccessPeers, netip.Addr.Compare)
	out.AccessPeers = slices.Compact(out.AccessPeers)
	out.Egress = r.Egress.normalized()
	return out
}

// validate checks r (normalized) and returns an error wrapping ErrInvalid
// for the first problem it finds.
func (r Rules) validate() error {
	if err := validIfName("bridge", r.Bridge); err != nil {
		return err
	}
	if err := validIfName("overlay", r.Overlay); err != nil {
		return err
	}
	if r.Bridge == r.Overlay {
		return fmt.Errorf("bridge and overlay are both %q: %w", r.Bridge, ErrInvalid)
	}
	seen := map[string]bool{r.Bridge: true, r.Overlay: true}
	for _, p := range r.Ports {
		if err := validIfName("port", p.IfName); err != nil {
			return err
		}
		if seen[p.IfName] {
			return fmt.Errorf("interface %q used twice: %w", p.IfName, ErrInvalid)
		}
		seen[p.IfName] = true
		if p.IPv4.IsValid() && !p.IPv4.Is4() {
			return fmt.Errorf("port %s: IPv4 address %s is not IPv4: %w", p.IfName, p.IPv4, ErrInvalid)
		}
		if p.IPv6.IsValid() && (!p.IPv6.Is6() || p.IPv6.Is4In6()) {
			return fmt.Errorf("port %s: IPv6 address %s is not IPv6: %w", p.IfName, p.IPv6, ErrInvalid)
		}
		if p.IPv6.Zone() != "" {
			return fmt.Errorf("port %s: IPv6 address %s has a zone: %w", p.IfName, p.IPv6, ErrInvalid)
		}
		if p.MAC != "" {
			if mac, err := net.ParseMAC(p.MAC); err != nil || len(mac) != 6 || mac[0]&1 == 1 {
				return fmt.Errorf("port %s: MAC %q is not a unicast Ethernet address: %w", p.IfName, p.MAC, ErrInvalid)
			}
		}
	}
	for _, a := range r.AccessPeers {
		if !a.IsValid() || a.Zone() != "" {
			return fmt.Errorf("access peer address %q is not an address without zone: %w", a, ErrInvalid)
		}
	}
	return r.Egress.validate(seen)
}

// validIfName checks that name can be an interface name.
func validIfName(what, name string) error {
	if err := linkname.Check(name); err != nil {
		return fmt.Errorf("%s interface name %q %v: %w", what, name, err, ErrInvalid)
	}
	return nil
}
