package spec

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/znet/znet/ipam"
)

// Limits that Validate enforces.
const (
	// MinMTU is the smallest overlay MTU: the IPv6 minimum link MTU.
	MinMTU = 1280
	// MaxMTU is the largest overlay MTU: a jumbo-frame underlay.
	MaxMTU = 9000
	// MaxNameLen is the longest name ValidName accepts.
	MaxNameLen = 32
	// MinRangeBits is the shortest prefix length of ip_range.
	MinRangeBits = 8
	// MaxRangeBits is the longest prefix length of ip_range.
	MaxRangeBits = 28
	// MaxSubnetBits is the longest node subnet: room for the network address,
	// the gateway, one workload and the broadcast address.
	MaxSubnetBits = 30
)

// ulaRange is fc00::/7, the IPv6 unique local addresses (RFC 4193).
var ulaRange = netip.MustParsePrefix("fc00::/7")

// Validate checks every field of s and returns the first problem as a
// *FieldError (which matches ErrInvalid). self is the id of the node that will
// apply the spec, or "" for none: only that node's entry may omit public_key.
//
// Validate does not fill in defaults: a zero IPv6Range is an error, so call
// SetDefaults first on a spec that was not built by Decode. A zero MTU is
// valid: each node derives its own.
func (s *Spec) Validate(self string) error {
	if err := ValidName(s.Name); err != nil {
		return fieldErr("name", "%v", err)
	}
	if s.Generation < 1 {
		return fieldErr("generation", "must be at least 1")
	}
	if err := checkIPRange(s.IPRange); err != nil {
		return err
	}
	if err := checkIPv6Range(s.IPv6Range); err != nil {
		return err
	}
	if s.MTU != 0 && (s.MTU < MinMTU || s.MTU > MaxMTU) {
		return fieldErr("mtu", "%d is out of range (%d..%d)", s.MTU, MinMTU, MaxMTU)
	}
	if len(s.Nodes) == 0 {
		return fieldErr("nodes", "at least one node is required")
	}
	// Sized up front: growing them a member at a time was a third of
	// Validate's time for a thousand members.
	seen := seenNodes{
		ids:     make(map[string]int, len(s.Nodes)),
		keys:    make(map[string]int, len(s.Nodes)),
		links:   make(map[netip.Addr]int),
		overlap: firstOverlap(s.Nodes),
		own:     s.ownSubnets(self),
		self:    self,
	}
	for i := range s.Nodes {
		if err := s.checkNode(i, self, &seen); err != nil {
			return err
		}
	}
	return nil
}

func checkIPRange(p netip.Prefix) error {
	const f = "ip_range"
	if err := checkPrefix(f, p, true, "is required"); err != nil {
		return err
	}
	if p.Bits() < MinRangeBits || p.Bits() > MaxRangeBits {
		return fieldErr(f, "prefix length /%d is out of range (/%d../%d)", p.Bits(), MinRangeBits, MaxRangeBits)
	}
	return nil
}

func checkIPv6Range(p netip.Prefix) error {
	const f = "ipv6_range"
	switch err := checkPrefix(f, p, false, "is required (SetDefaults derives it from the name)"); {
	case err != nil:
		return err
	case p.Bits() != 48:
		return fieldErr(f, "prefix length must be /48, not /%d", p.Bits())
	case !ulaRange.Contains(p.Addr()):
		return fieldErr(f, "%s is not a unique local range (inside %s)", p, ulaRange)
	}
	return nil
}

// checkPrefix checks what every prefix of a spec must be: given (else
// missing is the reason), IPv4 (v4) or IPv6, and without host bits.
func checkPrefix(f string, p netip.Prefix, v4 bool, missing string) *FieldError {
	switch {
	case !p.IsValid():
		return fieldErr(f, "%s", missing)
	case v4 && !p.Addr().Is4():
		return fieldErr(f, "%s is not an IPv4 prefix", p)
	case !v4 && (!p.Addr().Is6() || p.Addr().Is4In6()):
		return fieldErr(f, "%s is not an IPv6 prefix", p)
	case p != p.Masked():
		return fieldErr(f, "%s has host bits; did you mean %s?", p, p.Masked())
	}
	return nil
}

// seenNodes indexes the members, so that a spec of many members is checked in
// O(n log n).
type seenNodes struct {
	ids     map[string]int     // id -> index of the first member with it
	keys    map[string]int     // public key -> index of the first member with it
	links   map[netip.Addr]int // link address -> index of the first member with it
	overlap overlap            // the first member whose subnet overlaps an earlier one's
	own     []netip.Prefix     // the applying node's subnets (IPv4 and its /64), if known
	self    string             // the applying node's id
}

// ownSubnets returns the IPv4 subnet and IPv6 /64 of member self, or none
// (no such member, or a subnet that checkSubnet refuses).
func (s *Spec) ownSubnets(self string) []netip.Prefix {
	n, ok := s.Node(self)
	if !ok || !n.Subnet.IsValid() {
		return nil
	}
	sub, err := ipam.NodeSubnets(s.IPRange, s.IPv6Range, n.Subnet)
	if err != nil {
		return nil
	}
	return []netip.Prefix{sub.V4, sub.V6}
}

func (s *Spec) checkNode(i int, self string, seen *seenNodes) error {
	n := s.Nodes[i]
	path := func(field string) string { return fmt.Sprintf("nodes[%d].%s", i, field) }

	if err := ValidName(n.ID); err != nil {
		return fieldErr(path("id"), "%v", err)
	}
	if j, dup := seen.ids[n.ID]; dup {
		return fieldErr(path("id"), "duplicate of nodes[%d].id", j)
	}
	seen.ids[n.ID] = i

	// A member with verbatim allowed IPs may leave its subnet out: zos's
	// client sometimes sends a wrong one (see the zos package).
	if n.Subnet.IsValid() || len(n.AllowedIPs) == 0 || n.ID == self {
		if err := s.checkSubnet(i); err != nil {
			return err
		}
	}
	if seen.overlap.i == i {
		j := seen.overlap.j
		return fieldErr(path("subnet"), "overlaps nodes[%d].subnet (%s)", j, s.Nodes[j].Subnet)
	}

	switch {
	case n.PublicKey == "" && n.ID != self:
		return fieldErr(path("public_key"), "is required (only the applying node's own entry may omit it)")
	case n.PublicKey != "":
		if err := CheckKey(n.PublicKey); err != nil {
			return fieldErr(path("public_key"), "%v", err)
		}
		if j, dup := seen.keys[n.PublicKey]; dup {
			return fieldErr(path("public_key"), "duplicate of nodes[%d].public_key", j)
		}
		seen.keys[n.PublicKey] = i
	}

	if n.Endpoint != "" {
		if _, _, err := parseEndpoint(n.Endpoint); err != nil {
			return fieldErr(path("endpoint"), "%v", err)
		}
	}
	return s.checkExtension(i, seen)
}

// checkExtension checks member i's verbatim allowed IPs and link address:
// canonical prefixes inside the network's ranges or LinkRange, and a link
// address inside LinkRange that no other member has.
func (s *Spec) checkExtension(i int, seen *seenNodes) error {
	n := s.Nodes[i]
	for j, p := range n.AllowedIPs {
		f := fmt.Sprintf("nodes[%d].allowed_ips[%d]", i, j)
		switch {
		case p != p.Masked():
			return fieldErr(f, "%s has host bits; did you mean %s?", p, p.Masked())
		case !inside(s.IPRange, p) && !inside(s.IPv6Range, p) && !inside(LinkRange, p):
			return fieldErr(f, "%s is outside ip_range %s, ipv6_range %s and %s", p, s.IPRange, s.IPv6Range, LinkRange)
		}
		if err := CheckNotOwn(f, p, "subnet", seen.own...); err != nil && n.ID != seen.self {
			return err
		}
	}
	a := n.LinkAddress
	if !a.IsValid() {
		return nil
	}
	f := fmt.Sprintf("nodes[%d].link_address", i)
	if !LinkRange.Contains(a) {
		return fieldErr(f, "%s is not inside %s", a, LinkRange)
	}
	if j, dup := seen.links[a]; dup {
		return fieldErr(f, "duplicate of nodes[%d].link_address", j)
	}
	seen.links[a] = i
	return nil
}

// CheckNotOwn refuses an allowed IP p (field) of another peer that lies
// inside one of own, the applying node's subnets (ownName says what they
// are called where they were given, "" for nothing): WireGuard would send
// that peer traffic for this node's own workloads. A prefix covering a
// subnet whole (a zos relay's whole range) leaves it to the node's more
// specific routes. It is the one check of that fact: spec, zos and peers
// use it.
func CheckNotOwn(field string, p netip.Prefix, ownName string, own ...netip.Prefix) error {
	for _, o := range own {
		if p.Overlaps(o) && p.Bits() >= o.Bits() {
			if ownName != "" {
				ownName += " "
			}
			return fieldErr(field, "%s is inside this node's %s%s: that member would take this node's own traffic", p, ownName, o)
		}
	}
	return nil
}

// inside reports whether p lies within r.
func inside(r, p netip.Prefix) bool {
	return r.IsValid() && p.Addr().BitLen() == r.Addr().BitLen() && p.Bits() >= r.Bits() && r.Contains(p.Addr())
}

// checkSubnet checks member i's subnet on its own and against ip_range;
// overlaps between members are checked by checkNode. The field's path is
// made only for an error: formatting it for each of a thousand members
// was a quarter of Validate's time.
func (s *Spec) checkSubnet(i int) error {
	err := s.subnetProblem(s.Nodes[i].Subnet)
	if err != nil {
		err.Field = fmt.Sprintf("nodes[%d].subnet", i)
		return err
	}
	return nil
}

// subnetProblem is checkSubnet's check of p, its error's Field left
// empty for the caller to fill in.
func (s *Spec) subnetProblem(p netip.Prefix) *FieldError {
	if err := checkPrefix("", p, true, "is required"); err != nil {
		return err
	}
	switch {
	case p.Bits() > MaxSubnetBits:
		return fieldErr("", "prefix length /%d is too long (at most /%d: network, gateway, one workload, broadcast)", p.Bits(), MaxSubnetBits)
	case p.Bits() < s.IPRange.Bits() || !s.IPRange.Contains(p.Addr()):
		return fieldErr("", "%s is not inside ip_range %s", p, s.IPRange)
	}
	if _, err := ipam.SubnetID(s.IPRange, p); err != nil {
		return fieldErr("", "%v", err)
	}
	return nil
}

// CheckListenPort refuses a WireGuard listen port (field) that is no UDP
// port. It is the one check of that fact: the daemon's reservation, the
// deployment file and the API's fake use it.
func CheckListenPort(field string, port int) error {
	if port < 1 || port > 65535 {
		return fieldErr(field, "%d is not a UDP port (1-65535)", port)
	}
	return nil
}

// ValidName reports whether name is a DNS label of at most MaxNameLen
// characters: lower-case letters, digits and '-', not starting or ending with
// '-'. The error says what is wrong.
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("must not be empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("too long (%d characters, max %d)", len(name), MaxNameLen)
	}
	for i, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return fmt.Errorf("bad character %q at position %d (allowed: a-z, 0-9, '-')", c, i)
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return errors.New("must not start or end with '-'")
	}
	return nil
}
