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
	for _, p := range w {
		if _, found := slices.BinarySearchFunc(h, p, netip.Prefix.Compare); !found {
			add = append(add, p)
		}
	}
	for _, p := range h {
		if _, found := slices.BinarySearchFunc(w, p, netip.Prefix.Compare); !found {
			del = append(del, p)
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
