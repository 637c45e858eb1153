package spec

import (
	"net/netip"
)

// DefaultMTU is the overlay MTU used when a spec does not set one: a 1500-byte
// underlay minus the 80 bytes WireGuard over IPv6 needs.
const DefaultMTU = 1420

// Spec is one generation of a network's specification.
type Spec struct {
	Name       string       `json:"name"`
	Generation uint64       `json:"generation"`
	IPRange    netip.Prefix `json:"ip_range"`
	IPv6Range  netip.Prefix `json:"ipv6_range"`
	MTU        int          `json:"mtu"`
	Nodes      []Node       `json:"nodes"`
}

// Node is one member of a network.
type Node struct {
	ID        string       `json:"id"`
	Subnet    netip.Prefix `json:"subnet"`
	PublicKey string       `json:"public_key,omitempty"`
	// Endpoint is host:port of the member's WireGuard socket; empty for a
	// member hidden behind NAT.
	Endpoint string `json:"endpoint,omitempty"`
}
