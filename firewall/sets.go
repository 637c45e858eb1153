package firewall

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// set is a named set (or, with data, a verdict map) of a table, as Apply
// installs it and Render shows it. A packet is matched against it by one
// hash lookup, however many elements it holds: the rules that use sets
// cost the same for one workload port or access peer as for hundreds.
type set struct {
	name string
	id   uint32 // unique within Apply's batch, so no shared counter is used
	key  nftables.SetDatatype
	// isMap makes the set a verdict map: each element carries a verdict.
	isMap    bool
	elements []element
}

// element is one key of a set, with its verdict in a verdict map.
type element struct {
	key     []byte
	text    string // the key as nft shows it
	verdict *expr.Verdict
}

// IDs of the sets Apply installs, one per set in the batch (both tables go
// in one batch).
const (
	access4ID = 1 + iota
	access6ID
	portsID
)

// Names of the sets.
const (
	access4Set = "access4"
	access6Set = "access6"
	portsMap   = "ports"
)

// accessSets returns the sets of the access peers' addresses, IPv4 and
// IPv6; a family without addresses gets no set (and no rules).
func accessSets(peers []netip.Addr) []set {
	v4 := set{name: access4Set, id: access4ID, key: nftables.TypeIPAddr}
	v6 := set{name: access6Set, id: access6ID, key: nftables.TypeIP6Addr}
	for _, a := range peers {
		e := element{key: a.AsSlice(), text: a.String()}
		if a.Is4() {
			v4.elements = append(v4.elements, e)
		} else {
			v6.elements = append(v6.elements, e)
		}
	}
	var sets []set
	for _, s := range []set{v4, v6} {
		if len(s.elements) > 0 {
			sets = append(sets, s)
		}
	}
	return sets
}

// portsVmap returns the verdict map from a workload port's name to the
// jump to its chain.
func portsVmap(ports []Port) set {
	m := set{name: portsMap, id: portsID, key: nftables.TypeIFName, isMap: true}
	for _, p := range ports {
		m.elements = append(m.elements, element{
			key:     ifName(p.IfName),
			text:    fmt.Sprintf("%q", p.IfName),
			verdict: &expr.Verdict{Kind: expr.VerdictJump, Chain: portChain(p.IfName)},
		})
	}
	return m
}

// inetAddrIn matches IPv4 (s keyed by ipv4_addr) or IPv6 packets (inet
// family) whose address dir ("saddr" or "daddr") is in s.
func inetAddrIn(dir string, s set) match {
	m, text, off := nfproto(unix.NFPROTO_IPV4, "ipv4"), "ip "+dir, uint32(12)
	if s.key.Name == nftables.TypeIP6Addr.Name {
		m, text, off = nfproto(unix.NFPROTO_IPV6, "ipv6"), "ip6 "+dir, 8
	}
	if dir == "daddr" {
		off += s.key.Bytes
	}
	m.text += " " + text + " @" + s.name
	m.exprs = append(m.exprs,
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: s.key.Bytes},
		&expr.Lookup{SourceRegister: reg, SetName: s.name, SetID: s.id},
	)
	return m
}

// iifnameVmap jumps to the verdict the map m gives the input interface's
// name; a name not in m matches nothing and the packet goes on.
func iifnameVmap(m set) match {
	return match{text: "iifname vmap @" + m.name, exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg},
		// Register 0 is the verdict register.
		&expr.Lookup{SourceRegister: reg, DestRegister: 0, IsDestRegSet: true, SetName: m.name, SetID: m.id},
	}}
}

// addSets queues the sets of t, with their elements, into table nt. The
// chains a verdict map jumps to must be queued already.
func addSets(c *nftables.Conn, nt *nftables.Table, t table) error {
	for _, s := range t.sets {
		ns := &nftables.Set{
			Table: nt, ID: s.id, Name: s.name, KeyType: s.key, IsMap: s.isMap,
			KeyByteOrder: keyByteOrder(s.key),
		}
		if s.isMap {
			ns.DataType = nftables.TypeVerdict
		}
		elems := make([]nftables.SetElement, len(s.elements))
		for i, e := range s.elements {
			elems[i] = nftables.SetElement{Key: e.key, VerdictData: e.verdict}
		}
		if err := c.AddSet(ns, elems); err != nil {
			return fmt.Errorf("set %s: %w", s.name, err)
		}
	}
	return nil
}

// keyByteOrder is how nft declares the byte order of keys of type key,
// which it keeps in the set's user data to print the elements back: the
// kernel ignores it, but without it nft shows interface names as "".
// Addresses are big endian; strings (ifname) are "host endian" to nft,
// meaning bytes never swapped.
func keyByteOrder(key nftables.SetDatatype) binaryutil.ByteOrder {
	if key.Name == nftables.TypeIFName.Name {
		return binaryutil.NativeEndian
	}
	return binaryutil.BigEndian
}

// renderSet writes s as nft lists it, one element a line.
func renderSet(b *strings.Builder, s set) {
	kind, typ := "set", s.key.Name
	if s.isMap {
		kind, typ = "map", typ+" : verdict"
	}
	fmt.Fprintf(b, "\t%s %s {\n\t\ttype %s\n", kind, s.name, typ)
	if len(s.elements) > 0 {
		texts := make([]string, len(s.elements))
		for i, e := range s.elements {
			texts[i] = e.text
			if e.verdict != nil {
				texts[i] += " : " + verdict(e.verdict.Kind, e.verdict.Chain).text
			}
		}
		fmt.Fprintf(b, "\t\telements = { %s }\n", strings.Join(texts, ",\n\t\t\t     "))
	}
	b.WriteString("\t}\n")
}
