package dnsresolver

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Member changes without a rebuild: a member added to or removed from a
// network of a thousand is one delta (delta.go), and normalizing, checking
// and indexing the whole Config again for it cost milliseconds. When a
// delta leaves everything but the members as it was, the resolver checks
// only the members it names, starts and stops only those, and patches its
// view by the names and addresses they touch. Whatever it cannot do that
// way (another change, a member it would refuse) takes the whole Update,
// so that what is served and every error stay those of a whole Config.

// memberUpdater is a Controller that can apply a change of members without
// a rebuild (Resolver, Lazy). The control server holds the Config behind
// the change and uses it when it holds ids as they are normalized. Both
// methods return the resolver's count of changes after theirs.
type memberUpdater interface {
	// update is Update.
	update(cfg Config) (uint64, error)
	// updateMembers ends in the state Update(cfg) would, where cfg is the
	// Config the caller's change number at left the resolver with, changed
	// by add (members added or replaced, by id) and remove (ids), all of
	// whose member ids are in lower case. A resolver changed since (by
	// anyone else) takes cfg whole.
	updateMembers(cfg Config, add []Member, remove []string, at uint64) (uint64, error)
}

var (
	_ memberUpdater = (*Resolver)(nil)
	_ memberUpdater = (*Lazy)(nil)
)

// updateMembers implements memberUpdater.
func (r *Resolver) updateMembers(cfg Config, add []Member, remove []string, at uint64) (uint64, error) {
	if changes, ok := r.patchMembers(cfg, add, remove, at); ok {
		return changes, nil
	}
	return r.update(cfg)
}

// update implements memberUpdater.
func (l *Lazy) update(cfg Config) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r != nil {
		return l.r.update(cfg)
	}
	return 0, l.startLocked(cfg)
}

// updateMembers implements memberUpdater.
func (l *Lazy) updateMembers(cfg Config, add []Member, remove []string, at uint64) (uint64, error) {
	l.mu.Lock()
	r := l.r
	l.mu.Unlock()
	if r != nil {
		if changes, ok := r.patchMembers(cfg, add, remove, at); ok {
			return changes, nil
		}
	}
	return l.update(cfg)
}

// patchMembers applies the change of members to what r holds if r is at
// change number at, cfg's other fields are those r holds and the change
// passes every check, and returns r's new count of changes; false (and
// nothing changed) otherwise.
func (r *Resolver) patchMembers(cfg Config, add []Member, remove []string, at uint64) (uint64, bool) {
	rest := cfg
	rest.Members = nil
	ncfg, err := rest.normalized()
	if err != nil {
		return 0, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.changes != at || !sameButMembers(r.cfg, ncfg) {
		return 0, false
	}
	adds, gone, ok := r.checkChangeLocked(add, remove)
	if !ok {
		return 0, false
	}
	ncfg.Members = spliced(r.cfg.Members, adds, gone)
	r.cfg = ncfg
	changes, restarted := r.restartLocked(adds, remove)
	now := monoNow()
	for id, m := range r.members { // as Update does for the members it kept
		if !restarted[id] {
			m.askRecheck(now)
		}
	}
	r.publishMembersLocked(changes)
	r.changes++
	return r.changes, true
}

// sameButMembers reports whether a and b (normalized) differ in their
// members at most.
func sameButMembers(a, b Config) bool {
	return a.Network == b.Network && a.NodeID == b.NodeID &&
		a.Gateway4 == b.Gateway4 && a.Gateway6 == b.Gateway6 &&
		a.IPRange == b.IPRange && a.IPv6Range == b.IPv6Range &&
		slices.Equal(a.Local, b.Local) && slices.Equal(a.Upstreams, b.Upstreams)
}

// checkChangeLocked checks the members add (raw) against r's Config as
// normalized does, and that every id of remove is a member: adds are the
// members normalized, gone the ids removed or replaced. ok is false for
// anything a whole Config would refuse, for ids not in lower case, and
// for an id removed twice or removed and added (no client sends that; a
// whole Update decides what it means).
func (r *Resolver) checkChangeLocked(add []Member, remove []string) (adds []Member, gone map[string]bool, ok bool) {
	gone = make(map[string]bool, len(add)+len(remove))
	for _, id := range remove {
		if r.members[id] == nil || gone[id] {
			return nil, nil, false
		}
		gone[id] = true
	}
	for _, m := range add {
		if slices.Contains(remove, m.ID) {
			return nil, nil, false
		}
		gone[m.ID] = true // replaced: its gateways are free
	}
	owners := r.view.Load().members
	taken := make(map[netip.Addr]bool, 2*len(add))
	for _, raw := range add {
		m, err := r.cfg.member(raw)
		if err != nil || m.ID != raw.ID || m.ID == r.cfg.NodeID || r.cfg.checkGateways(m) != nil ||
			slices.ContainsFunc(adds, func(o Member) bool { return o.ID == m.ID }) {
			return nil, nil, false
		}
		for _, g := range []netip.Addr{m.Gateway4, m.Gateway6} {
			if !g.IsValid() {
				continue
			}
			owner, owned := owners[g]
			if taken[g] || g == r.cfg.Gateway4 || g == r.cfg.Gateway6 || (owned && !gone[owner]) {
				return nil, nil, false
			}
			taken[g] = true
		}
		adds = append(adds, m)
	}
	return adds, gone, true
}

// spliced returns members (sorted by id) without the ids in gone, with
// adds, sorted by id; members is not modified (views share it).
func spliced(members, adds []Member, gone map[string]bool) []Member {
	out := make([]Member, 0, len(members)+len(adds))
	for _, m := range members {
		if !gone[m.ID] {
			out = append(out, m)
		}
	}
	for _, m := range adds {
		i, _ := slices.BinarySearchFunc(out, m.ID, func(a Member, id string) int { return cmp.Compare(a.ID, id) })
		out = slices.Insert(out, i, m)
	}
	return out
}

// restartLocked stops syncing with the members removed and starts the
// members added, restarting those whose entry changed (keeping their
// records, as reconcileMembersLocked does). It returns the changes for
// the view and the ids it started.
func (r *Resolver) restartLocked(adds []Member, remove []string) ([]memberPatch, map[string]bool) {
	changes := make([]memberPatch, 0, len(adds)+len(remove))
	for _, id := range remove {
		m := r.members[id]
		m.cancel()
		delete(r.members, id)
		changes = append(changes, memberPatch{id: id, before: m.records})
	}
	restarted := make(map[string]bool, len(adds))
	fresh := 0 // held members new to this resolver: a crowd of them waits (quietFor)
	for _, a := range adds {
		if r.members[a.ID] == nil && r.cfg.holds(a.ID) {
			fresh++
		}
	}
	for _, a := range adds {
		old := r.members[a.ID]
		if old != nil && old.Member == a {
			continue
		}
		var before map[string]addrs
		if old != nil {
			old.cancel()
			delete(r.members, a.ID)
			before = old.records
		}
		r.startMemberLocked(a, old, fresh >= crowdMembers)
		restarted[a.ID] = true
		changes = append(changes, memberPatch{id: a.ID, before: before, after: r.members[a.ID].records})
	}
	return changes, restarted
}

// publishMembersLocked bumps the view serial and publishes the view
// patched by changes (publishLocked, for a change of members or of their
// records only).
func (r *Resolver) publishMembersLocked(changes []memberPatch) {
	r.serial = nextSerial(r.serial)
	held := func(id string) map[string]addrs {
		if m := r.members[id]; m != nil {
			return m.records
		}
		return nil
	}
	r.view.Store(r.view.Load().patched(r.cfg, r.serial, r.localSerial, changes, held))
}

// memberPatch is a change of member id for view.patched: the records held
// for it before and after (nil for none, or for not a member).
type memberPatch struct {
	id            string
	before, after map[string]addrs
}

// patched returns what newView(cfg, serial, localSerial, held) returns,
// where cfg (normalized) differs from v's Config at most in the members
// and records that changes name, and held returns the records held for a
// member now. v is not modified: entries are copied before they change.
func (v *view) patched(cfg Config, serial, localSerial uint32, changes []memberPatch, held func(id string) map[string]addrs) *view {
	nv := &view{
		cfg: cfg, zone: v.zone, serial: serial, localSerial: localSerial, ranges: v.ranges,
		names: v.names, nodes: v.nodes, ptr: v.ptr, members: v.members, holders: v.holders,
	}
	if len(changes) == 0 {
		// Nothing to patch: the maps are shared, as no view changes its
		// own. Cloning them was ~0.1 ms and ~0.4 MiB of garbage at a
		// thousand members for a push that changed no member.
		return nv
	}
	nv.names, nv.nodes, nv.ptr = maps.Clone(v.names), maps.Clone(v.nodes), maps.Clone(v.ptr)
	nv.members, nv.holders = maps.Clone(v.members), maps.Clone(v.holders)
	dirty := map[string]bool{}
	for _, c := range changes {
		nv.patchNode(cfg, c.id)
		for name := range c.before {
			if _, ok := c.after[name]; !ok {
				nv.holders[name] = without(nv.holders[name], c.id)
				if len(nv.holders[name]) == 0 {
					delete(nv.holders, name)
				}
			}
			dirty[name] = true
		}
		for name := range c.after {
			nv.holders[name] = with(nv.holders[name], c.id)
			dirty[name] = true
		}
	}
	for name := range dirty {
		nv.patchName(cfg, name, held)
	}
	return nv
}

// patchNode makes member id's node name and gateways those of cfg.
func (v *view) patchNode(cfg Config, id string) {
	old := v.nodes[id]
	for _, g := range old.all() {
		if v.members[g] == id { // not if a member changed meanwhile took it
			delete(v.members, g)
		}
	}
	var now addrs
	i, ok := slices.BinarySearchFunc(cfg.Members, id, func(m Member, id string) int { return cmp.Compare(m.ID, id) })
	if ok {
		m := cfg.Members[i]
		now.add(m.Gateway4)
		now.add(m.Gateway6)
		v.nodes[id] = now
		for _, g := range now.all() {
			v.members[g] = id
		}
	} else {
		delete(v.nodes, id)
	}
	v.repoint(id+"."+nodeLabel+"."+v.zone, old, now)
}

// patchName recomputes the addresses of workload name from cfg's local
// records and the records held of the members that hold it.
func (v *view) patchName(cfg Config, name string, held func(id string) map[string]addrs) {
	var now addrs
	addIn := func(xs ...netip.Addr) {
		for _, x := range xs {
			if cfg.inRange(x) {
				now.add(x)
			}
		}
	}
	if i, ok := slices.BinarySearchFunc(cfg.Local, name, func(r Record, n string) int { return strings.Compare(r.Name, n) }); ok {
		addIn(cfg.Local[i].IPv4, cfg.Local[i].IPv6)
	}
	for _, id := range v.holders[name] {
		a := held(id)[name]
		addIn(a.all()...)
	}
	v.repoint(name+"."+v.zone, v.names[name], now)
	if len(now.v4)+len(now.v6) > 0 {
		v.names[name] = now
	} else {
		delete(v.names, name)
	}
}

// repoint moves fqdn's PTRs from the addresses old to the addresses now.
func (v *view) repoint(fqdn string, old, now addrs) {
	for _, x := range old.all() {
		if !now.has(x) {
			v.ptrWithout(x, fqdn)
		}
	}
	for _, x := range now.all() {
		if !old.has(x) {
			v.ptrWith(x, fqdn)
		}
	}
}

// ptrWith adds fqdn to x's names, in a new slice.
func (v *view) ptrWith(x netip.Addr, fqdn string) {
	cur := v.ptr[x]
	i, found := slices.BinarySearch(cur, fqdn)
	if !found {
		v.ptr[x] = slices.Insert(slices.Clip(cur), i, fqdn)
	}
}

// ptrWithout removes fqdn from x's names, in a new slice.
func (v *view) ptrWithout(x netip.Addr, fqdn string) {
	cur := v.ptr[x]
	i, found := slices.BinarySearch(cur, fqdn)
	switch {
	case !found:
	case len(cur) == 1:
		delete(v.ptr, x)
	default:
		v.ptr[x] = slices.Delete(slices.Clone(cur), i, i+1)
	}
}

// all returns a's addresses, IPv4 first, in a new slice.
func (a addrs) all() []netip.Addr { return append(slices.Clone(a.v4), a.v6...) }

// has reports whether x is one of a's addresses.
func (a addrs) has(x netip.Addr) bool { return slices.Contains(a.v4, x) || slices.Contains(a.v6, x) }

// with returns ids (sorted) with id, in a new slice if it changes.
func with(ids []string, id string) []string {
	i, found := slices.BinarySearch(ids, id)
	if found {
		return ids
	}
	return slices.Insert(slices.Clip(ids), i, id)
}

// without returns ids (sorted) without id, in a new slice if it changes.
func without(ids []string, id string) []string {
	i, found := slices.BinarySearch(ids, id)
	if !found {
		return ids
	}
	return slices.Delete(slices.Clone(ids), i, i+1)
}
