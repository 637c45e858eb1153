package firewall

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"
)

// replaceInPlace installs tables (znet's, in ns) in one batch without
// deleting them: every rule of the tables is deleted and every set emptied,
// chains and sets that the new rules lack are deleted, and then the
// chains, sets, elements and rules are added, the existing ones kept.
//
// Deleting and re-adding the tables is atomic for rules but, it was seen,
// not for a verdict map: with the map deleted and added anew at every
// Apply, TestApplyKeepsTraffic lost about one echo in 300 while rules were
// swapped every few milliseconds. A packet walking the old rules across the
// commit still looks up the old map, whose elements the commit retires
// (set lookups read the current generation, rules the one the packet
// started in); its port is then unknown and the chain's policy drops it.
// Kept and refilled, the map holds, in both generations, an element for
// every port that stays, jumping to the same chain; the access peers' sets
// are treated alike.
func replaceInPlace(ns netns.NsHandle, tables []table) error {
	c, err := conn(ns)
	if err != nil {
		return err
	}
	for _, t := range tables {
		nt := &nftables.Table{Name: tableName, Family: t.family}
		chains, sets, err := existing(c, nt)
		if err != nil {
			return err
		}
		c.AddTable(nt) // no-op if it is there
		c.FlushTable(nt)
		for _, s := range sets {
			if slices.ContainsFunc(t.sets, func(w set) bool { return w.name == s }) {
				c.FlushSet(&nftables.Set{Table: nt, Name: s})
			} else {
				c.DelSet(&nftables.Set{Table: nt, Name: s})
			}
		}
		// After the flushes: nothing jumps to these chains any more.
		for _, ch := range chains {
			if !slices.ContainsFunc(t.chains, func(w chain) bool { return w.name == ch }) {
				c.DelChain(&nftables.Chain{Table: nt, Name: ch})
			}
		}
		if err := add(c, nt, t); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("replacing firewall in place: %w", err)
	}
	return nil
}

// existing returns the names of the chains and named sets of table nt in the
// namespace of c; none when there is no such table.
func existing(c *nftables.Conn, nt *nftables.Table) (chains, sets []string, err error) {
	tables, err := c.ListTablesOfFamily(nt.Family)
	if err != nil {
		return nil, nil, fmt.Errorf("listing tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == nt.Name }) {
		return nil, nil, nil
	}
	all, err := c.ListChainsOfTableFamily(nt.Family)
	if err != nil {
		return nil, nil, fmt.Errorf("listing chains: %w", err)
	}
	for _, ch := range all {
		if ch.Table.Name == nt.Name {
			chains = append(chains, ch.Name)
		}
	}
	ss, err := c.GetSets(nt)
	if err != nil {
		return nil, nil, fmt.Errorf("listing sets: %w", err)
	}
	for _, s := range ss {
		// An anonymous set (a rule's "{ 22, 80 }") goes with its rule,
		// which the flush deletes: deleting it by name as well fails the
		// batch, the kernel no longer finding it.
		if !s.Anonymous {
			sets = append(sets, s.Name)
		}
	}
	return chains, sets, nil
}
