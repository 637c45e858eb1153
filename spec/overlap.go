package spec

import (
	"net/netip"
	"slices"
)

// overlap names two members whose subnets overlap: j < i.
type overlap struct{ i, j int }

// firstOverlap returns the smallest i such that nodes[i].Subnet overlaps the
// subnet of some earlier member, and the first such earlier member j; i is -1
// when no two subnets overlap. Subnets that are not IPv4 prefixes are left
// out (Validate reports them on their own).
//
// It runs in O(n log n): in address order, prefixes either nest or are
// disjoint, so a stack of the prefixes that contain the current one holds
// every earlier-sorted prefix it overlaps.
func firstOverlap(nodes []Node) overlap {
	type entry struct {
		p netip.Prefix
		i int
	}
	entries := make([]entry, 0, len(nodes))
	for i, n := range nodes {
		if n.Subnet.IsValid() && n.Subnet.Addr().Is4() {
			entries = append(entries, entry{n.Subnet.Masked(), i})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if c := a.p.Addr().Compare(b.p.Addr()); c != 0 {
			return c
		}
		if a.p.Bits() != b.p.Bits() {
			return a.p.Bits() - b.p.Bits()
		}
		return a.i - b.i
	})

	type frame struct {
		p      netip.Prefix
		lowest int // the lowest member index in this frame and those below it
	}
	var stack []frame
	best := -1
	for _, e := range entries {
		for len(stack) > 0 && !stack[len(stack)-1].p.Contains(e.p.Addr()) {
			stack = stack[:len(stack)-1]
		}
		lowest := e.i
		if len(stack) > 0 {
			// e overlaps every prefix on the stack; its best pair is with
			// the lowest index there.
			top := stack[len(stack)-1].lowest
			if later := max(e.i, top); best < 0 || later < best {
				best = later
			}
			lowest = min(lowest, top)
		}
		stack = append(stack, frame{e.p, lowest})
	}
	if best < 0 {
		return overlap{i: -1, j: -1}
	}
	p := nodes[best].Subnet.Masked()
	for j := range best {
		q := nodes[j].Subnet
		if q.IsValid() && q.Addr().Is4() && q.Masked().Overlaps(p) {
			return overlap{i: best, j: j}
		}
	}
	panic("spec: firstOverlap lost its pair") // unreachable: best came from a pair
}
