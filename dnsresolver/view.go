package dnsresolver

import (
	"net/netip"
	"slices"
)

// addrs are the addresses of one name, sorted and without duplicates.
type addrs struct{ v4, v6 []netip.Addr }

// add adds a (IPv4 or IPv6) unless it is unset or already there.
func (a *addrs) add(x netip.Addr) {
	switch {
	case !x.IsValid():
	case x.Is4() && !slices.Contains(a.v4, x):
		a.v4 = append(a.v4, x)
		slices.SortFunc(a.v4, netip.Addr.Compare)
	case x.Is6() && !slices.Contains(a.v6, x):
		a.v6 = append(a.v6, x)
		slices.SortFunc(a.v6, netip.Addr.Compare)
	}
}

// view is everything the handler answers from: an immutable snapshot,
// rebuilt whenever the config or a member's records change and read
// without locks.
type view struct {
	cfg         Config // normalized
	zone        string // <network>.internal.
	serial      uint32 // serial of the zone and the reverse zones
	localSerial uint32 // serial of this node's transfer zone
	ranges      []netip.Prefix
	names       map[string]addrs        // workload -> addresses on every member
	nodes       map[string]addrs        // node id -> gateways, this node included
	ptr         map[netip.Addr][]string // address -> names (fqdn), sorted
	members     map[netip.Addr]string   // member gateway -> member id
	// holders index the records held: name -> ids of the members whose
	// records have that name, sorted. A change of members recomputes only
	// their names from it (see patched).
	holders map[string][]string
}

// newView builds the view of cfg (normalized) with the records held for
// each member in held (member id -> name -> addresses); held entries of
// nodes that are not members are ignored.
func newView(cfg Config, serial, localSerial uint32, held map[string]map[string]addrs) *view {
	v := &view{
		cfg:         cfg,
		zone:        cfg.zone(),
		serial:      serial,
		localSerial: localSerial,
		// Sized up front: growing them cost more than filling them.
		names:   make(map[string]addrs, len(cfg.Local)),
		nodes:   make(map[string]addrs, len(cfg.Members)+1),
		ptr:     make(map[netip.Addr][]string, len(cfg.Local)+len(cfg.Members)+2),
		members: make(map[netip.Addr]string, len(cfg.Members)),
		holders: map[string][]string{},
	}
	for _, r := range []netip.Prefix{cfg.IPRange, cfg.IPv6Range} {
		if r.IsValid() {
			v.ranges = append(v.ranges, r)
		}
	}
	addName := func(name string, xs ...netip.Addr) {
		a := v.names[name]
		for _, x := range xs {
			if !cfg.inRange(x) { // a member's records, checked again for the current ranges
				continue
			}
			a.add(x)
			v.addPTR(x, name+"."+v.zone)
		}
		if len(a.v4)+len(a.v6) > 0 {
			v.names[name] = a
		}
	}
	addNode := func(id string, xs ...netip.Addr) {
		a := v.nodes[id]
		for _, x := range xs {
			a.add(x)
			v.addPTR(x, id+"."+nodeLabel+"."+v.zone)
		}
		v.nodes[id] = a
	}
	addNode(cfg.NodeID, cfg.Gateway4, cfg.Gateway6)
	for _, r := range cfg.Local {
		addName(r.Name, r.IPv4, r.IPv6)
	}
	for _, m := range cfg.Members {
		addNode(m.ID, m.Gateway4, m.Gateway6)
		for _, g := range []netip.Addr{m.Gateway4, m.Gateway6} {
			if g.IsValid() {
				v.members[g] = m.ID
			}
		}
		for name, a := range held[m.ID] {
			addName(name, append(slices.Clone(a.v4), a.v6...)...)
			v.holders[name] = append(v.holders[name], m.ID) // sorted: Members are
		}
	}
	return v
}

// addPTR records that address x (if set) has the name fqdn.
func (v *view) addPTR(x netip.Addr, fqdn string) {
	if !x.IsValid() || slices.Contains(v.ptr[x], fqdn) {
		return
	}
	v.ptr[x] = append(v.ptr[x], fqdn)
	slices.Sort(v.ptr[x])
}

// relative returns the labels of a name in the zone left of the zone's own
// labels (none for the apex); ok is false for names outside the zone.
func (v *view) relative(labels []string) (rel []string, ok bool) {
	n := len(labels)
	if n < 2 || labels[n-1] != zoneSuffix || labels[n-2] != v.cfg.Network {
		return nil, false
	}
	return labels[:n-2], true
}

// reverseRange returns the network range that holds the reverse name of
// prefix p, if any: p lies inside it and is at least as long.
func (v *view) reverseRange(p netip.Prefix) (netip.Prefix, bool) {
	for _, r := range v.ranges {
		if r.Addr().Is4() == p.Addr().Is4() && p.Bits() >= r.Bits() && r.Contains(p.Addr()) {
			return r, true
		}
	}
	return netip.Prefix{}, false
}

// anyUnder reports whether some address with a PTR lies inside p.
func (v *view) anyUnder(p netip.Prefix) bool {
	for x := range v.ptr {
		if p.Contains(x) {
			return true
		}
	}
	return false
}
