package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
)

// DefaultMTU is the overlay MTU of a 1500-byte underlay minus the 80 bytes
// WireGuard over IPv6 needs. A spec without an MTU does not get it: each
// node derives its own from its underlay (see the daemon); it is what a node
// falls back to when its underlay tells it nothing.
const DefaultMTU = 1420

// Spec is one generation of a network's specification.
type Spec struct {
	Name       string       `json:"name"`
	Generation uint64       `json:"generation"`
	IPRange    netip.Prefix `json:"ip_range"`
	IPv6Range  netip.Prefix `json:"ipv6_range"`
	// MTU is the overlay MTU every node uses; 0 (left out) lets each node
	// derive its own from its underlay.
	MTU int `json:"mtu,omitempty"`
	// Egress gives the network's workloads a way out to the internet
	// through each member node (source NAT, replies only); default none.
	Egress bool   `json:"egress,omitempty"`
	Nodes  []Node `json:"nodes"`
}

// Node is one member of a network.
type Node struct {
	ID        string       `json:"id"`
	Subnet    netip.Prefix `json:"subnet"`
	PublicKey string       `json:"public_key,omitempty"`
	// Endpoint is host:port of the member's WireGuard socket; empty for a
	// member hidden behind NAT.
	Endpoint string `json:"endpoint,omitempty"`
	// AllowedIPs, when not empty, are the member's WireGuard AllowedIPs and
	// routes exactly as given, instead of the ones derived from the
	// topology (a zos-planned network, whose client decides who relays for
	// whom). Such a member is always a peer, hidden or not, and may omit
	// its subnet. Ignored on the applying node's own entry.
	AllowedIPs []netip.Prefix `json:"allowed_ips,omitempty"`
	// LinkAddress is the member's address on its WireGuard device, inside
	// LinkRange (zos's 100.64.<o2>.<o3>); zero for none.
	LinkAddress netip.Addr `json:"link_address,omitzero"`
}

// LinkRange holds the members' link addresses (Node.LinkAddress): zos's
// 100.64.0.0/16, which its users' WireGuard configs route.
var LinkRange = netip.MustParsePrefix("100.64.0.0/16")

// HasLinkAddresses reports whether a member carries a link address, in
// which case workloads also route LinkRange through their gateway.
func (s *Spec) HasLinkAddresses() bool {
	for _, n := range s.Nodes {
		if n.LinkAddress.IsValid() {
			return true
		}
	}
	return false
}

// Node returns the member with the given id.
func (s *Spec) Node(id string) (Node, bool) {
	for _, n := range s.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// SetDefaults fills in the optional fields that every node must agree on: a
// zero IPv6Range becomes DeriveULA(Name). A zero MTU stays zero: it means
// "derived by each node from its underlay", which no spec can know.
func (s *Spec) SetDefaults() {
	if !s.IPv6Range.IsValid() {
		s.IPv6Range = DeriveULA(s.Name)
	}
}

// Clone returns a deep copy of s (nil for nil).
func (s *Spec) Clone() *Spec {
	if s == nil {
		return nil
	}
	c := *s
	if s.Nodes != nil {
		c.Nodes = slices.Clone(s.Nodes)
		for i := range c.Nodes {
			c.Nodes[i].AllowedIPs = slices.Clone(c.Nodes[i].AllowedIPs)
		}
	}
	return &c
}

// Equal reports whether s and o describe the same network: their canonical
// JSON, after defaults, is the same. Canonical means members sorted by id (the
// mesh has no order) and no members written as none. Two nil specs are equal.
func (s *Spec) Equal(o *Spec) bool {
	if s == nil || o == nil {
		return s == o
	}
	a, errA := s.canonicalJSON()
	b, errB := o.canonicalJSON()
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

func (s *Spec) canonicalJSON() ([]byte, error) {
	c := s.Clone()
	c.SetDefaults()
	if len(c.Nodes) == 0 {
		c.Nodes = nil
	}
	slices.SortStableFunc(c.Nodes, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	return json.Marshal(c)
}

// DeriveULA returns the IPv6 unique local /48 for a network named name: fd00::/8
// followed by a 40-bit global id taken from SHA-256 of the name (RFC 4193
// style, but deterministic so every node derives the same range).
func DeriveULA(name string) netip.Prefix {
	sum := sha256.Sum256([]byte(name))
	var a [16]byte
	a[0] = 0xfd
	copy(a[1:6], sum[:5])
	return netip.PrefixFrom(netip.AddrFrom16(a), 48)
}
