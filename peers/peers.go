package peers

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/znet/znet/ipam"
	"github.com/znet/znet/spec"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Keepalive is the persistent keepalive interval Desired sets on every peer
// that has an endpoint, so that a handshake happens as soon as the peer is
// configured and NAT mappings on the way stay open.
const Keepalive = 25 * time.Second

var (
	// ErrNotMember is returned (wrapped, with the node id) by Desired when
	// the node is not one of the spec's members.
	ErrNotMember = errors.New("node is not a member of the network")
	// ErrDuplicateKey is returned (wrapped, naming the node or peer) by
	// Desired when two members, or a member and an extra peer, share a
	// public key.
	ErrDuplicateKey = errors.New("public key is used twice")
	// ErrDuplicatePrefix is returned (wrapped, naming the peer and prefix) by
	// Desired when two peers would be given the same allowed IP prefix:
	// WireGuard routes a prefix to one peer only.
	ErrDuplicatePrefix = errors.New("allowed IP is given to two peers")
	// ErrOverlapsSelf is returned (wrapped, naming the member and both
	// prefixes) by Desired when an AllowedIP of a member peer lies inside
	// this node's own subnets: that member would get the traffic of this
	// node's own workloads.
	ErrOverlapsSelf = errors.New("allowed IP overlaps this node's own subnet")
	// ErrNoResolver is returned (wrapped, naming the node) by Desired when an
	// endpoint names a host and no Resolver was given.
	ErrNoResolver = errors.New("no resolver for host names")
)

// Peer is one WireGuard peer this node should have.
type Peer struct {
	// Name is the member's node id, or the access peer's name.
	Name      string
	PublicKey wgtypes.Key
	// Endpoint is where to reach the peer; zero when the peer is hidden (it
	// connects to us).
	Endpoint netip.AddrPort
	// AllowedIPs is sorted and canonical (masked, no duplicates).
	AllowedIPs []netip.Prefix
	// Keepalive is the persistent keepalive interval, 0 for none.
	Keepalive time.Duration
}

// Resolver turns an endpoint host name into an address. IP literals never
// reach it. deploy passes NetResolver(nil), the system's resolver; the
// daemon passes its own on the system's resolver (Config.Resolve); tests
// pass a map.
type Resolver func(ctx context.Context, host string) (netip.Addr, error)

// Desired returns the peers node self must have for spec s, sorted by name,
// followed by the extra local peers (access peers) in the order given, their
// AllowedIPs made canonical.
//
// A public node (one with an endpoint) peers with every other member; a
// hidden node only with the public members, and the relay's AllowedIPs on it
// also carry the subnets of every other hidden member. A member's AllowedIPs
// are its IPv4 subnet and its IPv6 /64 twin. A member that carries its own
// AllowedIPs (spec.Node.AllowedIPs) is a peer whatever the topology, with
// exactly those and their IPv6 twins (see verbatim), and plays no part in
// relaying. Peers with an endpoint get
// Keepalive, hidden peers none. Endpoint host names are looked up through
// resolve.
func Desired(ctx context.Context, s *spec.Spec, self string, resolve Resolver, extra ...Peer) ([]Peer, error) {
	me := slices.IndexFunc(s.Nodes, func(n spec.Node) bool { return n.ID == self })
	if me < 0 {
		return nil, fmt.Errorf("node %q: %w", self, ErrNotMember)
	}
	keys := make([]wgtypes.Key, len(s.Nodes))
	subnets := make([][]netip.Prefix, len(s.Nodes))
	// One array for every member's two subnets, and one for the peers'
	// AllowedIPs: at a thousand members, a slice each was two thousand
	// allocations of the ~0.8 ms Desired took. Slices into them are
	// capped (three-index), so an append never writes into a neighbour.
	arena := make([]netip.Prefix, 0, 2*len(s.Nodes))
	seen := make(map[wgtypes.Key]int, len(s.Nodes))
	for i, n := range s.Nodes {
		key, err := ParseKey(n.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("nodes[%d].public_key: %w", i, err)
		}
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("nodes[%d].public_key: same as nodes[%d]: %w", i, j, ErrDuplicateKey)
		}
		seen[key] = i
		keys[i] = key
		if len(n.AllowedIPs) > 0 && i != me {
			subnets[i] = verbatim(s, n.AllowedIPs)
			continue
		}
		sub, err := ipam.NodeSubnets(s.IPRange, s.IPv6Range, n.Subnet)
		if err != nil {
			return nil, fmt.Errorf("nodes[%d].subnet: %w", i, err)
		}
		arena = append(arena, sub.V4, sub.V6)
		subnets[i] = arena[len(arena)-2 : len(arena) : len(arena)]
	}

	selfPublic := s.Nodes[me].Endpoint != ""
	relay := Relay(s)
	out := make([]Peer, 0, len(s.Nodes)-1+len(extra))
	allowed := make([]netip.Prefix, 0, len(arena))
	for i, n := range s.Nodes {
		public, given := n.Endpoint != "", len(n.AllowedIPs) > 0
		if i == me || (!selfPublic && !public && !given) {
			continue
		}
		// Not a copy: canonicalInto below copies, and the relay's
		// appends are made to a copy.
		p := Peer{Name: n.ID, PublicKey: keys[i], AllowedIPs: subnets[i]}
		if public {
			ep, err := resolveEndpoint(ctx, n.Endpoint, resolve)
			if err != nil {
				return nil, fmt.Errorf("nodes[%d].endpoint: %w", i, err)
			}
			p.Endpoint = ep
			p.Keepalive = Keepalive
		}
		if !selfPublic && n.ID == relay && !given {
			p.AllowedIPs = slices.Clone(p.AllowedIPs)
			for j, m := range s.Nodes {
				if j != me && m.Endpoint == "" && len(m.AllowedIPs) == 0 {
					p.AllowedIPs = append(p.AllowedIPs, subnets[j]...)
				}
			}
		}
		p.AllowedIPs, allowed = canonicalInto(allowed, p.AllowedIPs)
		out = append(out, p)
	}
	if err := checkOwn(subnets[me], out); err != nil {
		return nil, err
	}
	out = sortedByName(out)

	for _, e := range extra {
		if j, dup := seen[e.PublicKey]; dup {
			return nil, fmt.Errorf("peer %q: public key of nodes[%d]: %w", e.Name, j, ErrDuplicateKey)
		}
		seen[e.PublicKey] = -1
		ips, err := canonical(e.AllowedIPs)
		if err != nil {
			return nil, fmt.Errorf("peer %q: %w", e.Name, err)
		}
		e.AllowedIPs = ips
		out = append(out, e)
	}
	if err := checkPrefixes(out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil // as ever: callers may tell nil from empty
	}
	return out, nil
}

// verbatim returns a member's given AllowedIPs plus the IPv6 twin of each
// that is the network's IPv4 range (its /48) or a subnet inside it (that
// subnet's /64, see ipam.NodeSubnets), so that the IPv6 addresses znet
// gives every workload follow the IPv4 plan of a client that knows nothing
// of them.
func verbatim(s *spec.Spec, given []netip.Prefix) []netip.Prefix {
	out := slices.Clone(given)
	for _, p := range given {
		switch {
		case p == s.IPRange:
			out = append(out, s.IPv6Range)
		case p.Addr().Is4() && p.Bits() > s.IPRange.Bits() && s.IPRange.Contains(p.Addr()):
			if sub, err := ipam.NodeSubnets(s.IPRange, s.IPv6Range, p); err == nil {
				out = append(out, sub.V6)
			}
		}
	}
	return out
}

// Relay returns the id of the member that relays traffic between hidden
// members: the public member with the smallest id, or "" when every member
// is hidden.
func Relay(s *spec.Spec) string {
	relay := ""
	for _, n := range s.Nodes {
		if n.Endpoint != "" && (relay == "" || n.ID < relay) {
			relay = n.ID
		}
	}
	return relay
}

// resolveEndpoint turns a spec endpoint "host:port" into an address and port,
// asking resolve only for host names.
func resolveEndpoint(ctx context.Context, endpoint string, resolve Resolver) (netip.AddrPort, error) {
	host, port, err := spec.ParseEndpoint(endpoint)
	if err != nil {
		return netip.AddrPort{}, err
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		if resolve == nil {
			return netip.AddrPort{}, fmt.Errorf("cannot resolve host %q: %w", host, ErrNoResolver)
		}
		addr, err = resolve(ctx, host)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("cannot resolve host %q: %w", host, err)
		}
		if !addr.IsValid() {
			return netip.AddrPort{}, fmt.Errorf("cannot resolve host %q: resolver returned no address", host)
		}
	}
	return netip.AddrPortFrom(addr.Unmap(), port), nil
}

// canonical returns the prefixes masked, sorted and without duplicates, in a
// new slice; an error when one is invalid.
func canonical(ps []netip.Prefix) ([]netip.Prefix, error) {
	for _, p := range ps {
		if _, ok := canonicalPrefix(p); !ok {
			return nil, fmt.Errorf("invalid allowed IP %q", p)
		}
	}
	return sortedSet(ps), nil
}

// canonicalPrefix returns p masked, an IPv4-mapped IPv6 prefix turned into
// its IPv4 form; false when p is invalid or cannot be expressed that way.
func canonicalPrefix(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() {
		a, bits = a.Unmap(), bits-96
		if bits < 0 {
			return netip.Prefix{}, false
		}
	}
	return netip.PrefixFrom(a, bits).Masked(), true
}

// checkOwn returns ErrOverlapsSelf when an AllowedIP of a member peer lies
// inside one of own, this node's subnets (or is one): routing would send
// that member traffic for this node's own addresses. A prefix that covers
// a subnet whole (a zos relay's AllowedIPs carry the whole range) leaves
// it to the more specific route to this node's bridge. Access peers are
// left out: their addresses lie in this node's subnet by design.
func checkOwn(own []netip.Prefix, members []Peer) error {
	for _, p := range members {
		for _, ip := range p.AllowedIPs {
			// Only a prefix that overlaps can be refused: the field name
			// is made for those (quoting a thousand names cost ~50 µs).
			if !overlapsAny(ip, own) {
				continue
			}
			if err := spec.CheckNotOwn("peer "+strconv.Quote(p.Name), ip, "", own...); err != nil {
				return fmt.Errorf("%w: %w", err, ErrOverlapsSelf)
			}
		}
	}
	return nil
}

// overlapsAny reports whether p overlaps one of ps.
func overlapsAny(p netip.Prefix, ps []netip.Prefix) bool {
	return slices.ContainsFunc(ps, p.Overlaps)
}

// checkPrefixes returns ErrDuplicatePrefix when two peers share a prefix.
func checkPrefixes(ps []Peer) error {
	n := 0
	for _, p := range ps {
		n += len(p.AllowedIPs)
	}
	// Sized up front: with a thousand members, growing it cost more than
	// filling it. Keyed without pointers, owners by index: keyed by
	// netip.Prefix (which holds one, for zones) with names it took ~0.15
	// ms of Desired's ~0.6 at a thousand members. Prefixes here are
	// canonical, so without a zone: the address and length tell them.
	owner := make(map[prefixKey]int, n)
	for i, p := range ps {
		for _, ip := range p.AllowedIPs {
			k := prefixKey{addr: ip.Addr().As16(), bits: int16(ip.Bits()), is4: ip.Addr().Is4()}
			if o, dup := owner[k]; dup {
				return fmt.Errorf("peer %q: %s is also peer %q's: %w", p.Name, ip, ps[o].Name, ErrDuplicatePrefix)
			}
			owner[k] = i
		}
	}
	return nil
}

// prefixKey is a prefix without a zone, as a map key without pointers.
type prefixKey struct {
	addr [16]byte
	bits int16
	is4  bool
}

// canonicalInto is canonical appending to arena: the canonical set of ps
// is appended to arena and returned capped (three-index), with arena as
// it is after. Where canonical fails it returns nil, arena unchanged.
func canonicalInto(arena, ps []netip.Prefix) (set, rest []netip.Prefix) {
	start := len(arena)
	for _, p := range ps {
		q, ok := canonicalPrefix(p)
		if !ok {
			return nil, arena[:start]
		}
		arena = append(arena, q)
	}
	set = arena[start:]
	slices.SortFunc(set, netip.Prefix.Compare)
	set = slices.Compact(set)
	arena = arena[:start+len(set)]
	return set[:len(set):len(set)], arena
}

// sortedByName returns ps sorted by name, those of one name in their
// order: a stable sort. It sorts indices, not the peers themselves:
// slices.SortStableFunc moved the ~100-byte peers around by rotations,
// ~0.15 ms at a thousand members; and a list given sorted is returned as
// it is.
func sortedByName(ps []Peer) []Peer {
	byName := func(a, b Peer) int { return cmp.Compare(a.Name, b.Name) }
	if slices.IsSortedFunc(ps, byName) {
		return ps
	}
	// Names beside their places: comparing through indices into ps
	// cost as much again in cache misses.
	type ranked struct {
		name string
		at   int
	}
	order := make([]ranked, len(ps))
	for i, p := range ps {
		order[i] = ranked{p.Name, i}
	}
	slices.SortFunc(order, func(a, b ranked) int {
		// One string comparison (cmp.Compare on strings makes two), the
		// places only for a tie.
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return a.at - b.at
	})
	out := make([]Peer, len(ps), cap(ps))
	for i, r := range order {
		out[i] = ps[r.at]
	}
	return out
}

// ParseKey is wgtypes.ParseKey without its allocation for a well-formed
// key (a thousand members, a thousand keys per apply); anything else
// takes wgtypes.ParseKey, for its errors.
func ParseKey(s string) (wgtypes.Key, error) {
	var src [44]byte                 // base64 of 32 bytes; on the stack, as []byte(s) of 44 was not
	var buf [wgtypes.KeyLen + 1]byte // 44 characters decode into up to 33 bytes
	if len(s) == len(src) {
		copy(src[:], s)
		if n, err := base64.StdEncoding.Decode(buf[:], src[:]); err == nil && n == wgtypes.KeyLen {
			return wgtypes.Key(buf[:wgtypes.KeyLen]), nil
		}
	}
	return wgtypes.ParseKey(s)
}
