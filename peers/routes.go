package peers

import (
	"net/netip"
	"slices"
)

// Routes returns the prefixes this node routes through its WireGuard device:
// the union of the desired peers' AllowedIPs, sorted, without duplicates.
func Routes(desired []Peer) []netip.Prefix {
	var all []netip.Prefix
	for _, p := range desired {
		all = append(all, p.AllowedIPs...)
	}
	return sortedSet(all)
}

// RouteDiff returns the routes to add and the routes to delete to go from
// have to want, each sorted. Prefixes are compared in canonical (masked)
// form; invalid ones are ignored.
func RouteDiff(have, want []netip.Prefix) (add, del []netip.Prefix) {
	h, w := sortedSet(have), sortedSet(want)
	// One walk over both sorted sets: a binary search per route cost
	// a millisecond per apply at a thousand members.
	for len(h) > 0 || len(w) > 0 {
		c := 0
		switch {
		case len(h) == 0:
			c = 1
		case len(w) == 0:
			c = -1
		default:
			c = h[0].Compare(w[0])
		}
		switch {
		case c < 0: // only in have
			del = append(del, h[0])
			h = h[1:]
		case c > 0: // only in want
			add = append(add, w[0])
			w = w[1:]
		default:
			h, w = h[1:], w[1:]
		}
	}
	return add, del
}

// sortedSet returns the valid prefixes of ps in canonical form, sorted and
// without duplicates, in a new slice.
func sortedSet(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if q, ok := canonicalPrefix(p); ok {
			out = append(out, q)
		}
	}
	slices.SortFunc(out, netip.Prefix.Compare)
	return slices.Compact(out)
}
