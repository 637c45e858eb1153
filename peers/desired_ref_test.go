package peers

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/znet/znet/ipam"
	"github.com/znet/znet/spec"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// desiredRef is Desired as it was before it was made cheaper for a
// thousand members (one arena for the prefixes, keys decoded without an
// allocation, names quoted only for an error, a sort of indices): the
// reference TestDesiredMatchesReference holds the fast one to.
func desiredRef(ctx context.Context, s *spec.Spec, self string, resolve Resolver, extra ...Peer) ([]Peer, error) {
	me := slices.IndexFunc(s.Nodes, func(n spec.Node) bool { return n.ID == self })
	if me < 0 {
		return nil, fmt.Errorf("node %q: %w", self, ErrNotMember)
	}
	keys := make([]wgtypes.Key, len(s.Nodes))
	subnets := make([][]netip.Prefix, len(s.Nodes))
	seen := make(map[wgtypes.Key]int, len(s.Nodes))
	for i, n := range s.Nodes {
		key, err := wgtypes.ParseKey(n.PublicKey)
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
		subnets[i] = []netip.Prefix{sub.V4, sub.V6}
	}

	selfPublic := s.Nodes[me].Endpoint != ""
	relay := Relay(s)
	var out []Peer
	for i, n := range s.Nodes {
		public, given := n.Endpoint != "", len(n.AllowedIPs) > 0
		if i == me || (!selfPublic && !public && !given) {
			continue
		}
		// Not a copy: canonical below makes a new slice, and the relay's
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
		p.AllowedIPs, _ = canonical(p.AllowedIPs)
		out = append(out, p)
	}
	if err := checkOwnRef(subnets[me], out); err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b Peer) int { return cmp.Compare(a.Name, b.Name) })

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
	return out, nil
}

// checkOwnRef is checkOwn as desiredRef used it.
func checkOwnRef(own []netip.Prefix, members []Peer) error {
	for _, p := range members {
		field := "peer " + strconv.Quote(p.Name)
		for _, ip := range p.AllowedIPs {
			if err := spec.CheckNotOwn(field, ip, "", own...); err != nil {
				return fmt.Errorf("%w: %w", err, ErrOverlapsSelf)
			}
		}
	}
	return nil
}
