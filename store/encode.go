package store

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"slices"

	"github.com/znet/znet/spec"
)

// Encoding a record again for one member changed: json.Marshal of a
// network whose spec has a thousand members took ~0.25 ms of an apply's
// store write, nearly all of it the members, most of which the last
// record of the network held as they are. So the record is encoded
// without its members, and the members' array is put together from the
// bytes the last record had for each member that is the same (head and
// tail, as a member or two come and go), the others encoded one by one.
// The result is json.Marshal's, byte for byte (TestEncodeNetworkMatchesMarshal):
// encoding/json writes an array element as it writes the value alone.

// nodeFields is spec.Node's fields: the conversion in sameNode stops the
// build when a field is added to spec.Node, which sameNode must compare.
type nodeFields struct {
	ID          string
	Subnet      netip.Prefix
	PublicKey   string
	Endpoint    string
	AllowedIPs  []netip.Prefix
	LinkAddress netip.Addr
}

// sameNode reports whether a and b encode the same (nil and empty
// AllowedIPs alike: both are left out).
func sameNode(a, b *spec.Node) bool {
	x, y := nodeFields(*a), nodeFields(*b)
	return x.ID == y.ID && x.Subnet == y.Subnet && x.PublicKey == y.PublicKey && x.Endpoint == y.Endpoint &&
		x.LinkAddress == y.LinkAddress && slices.Equal(x.AllowedIPs, y.AllowedIPs)
}

// encodedNodes is where a record's members are in its bytes: the members
// (as they were encoded) and, for member i, raw[at[i][0]:at[i][1]].
type encodedNodes struct {
	nodes []spec.Node
	raw   []byte
	at    [][2]int
}

// bytes returns member i's encoding.
func (e *encodedNodes) bytes(i int) []byte { return e.raw[e.at[i][0]:e.at[i][1]] }

// minEncodeNodes is how many members a spec needs for the record to be
// encoded in parts: below it, one json.Marshal is as cheap.
const minEncodeNodes = 64

// encodeNetwork returns json.Marshal(n) and where its members are in it,
// reusing prev's bytes (the network's last record; nil for none) for the
// members it has the same; nil where the record was encoded whole.
func encodeNetwork(n *Network, prev *encodedNodes) ([]byte, [][2]int, error) {
	if n.Spec == nil || len(n.Spec.Nodes) < minEncodeNodes {
		v, err := json.Marshal(n)
		return v, nil, err
	}
	head, tail, ok, err := splitRecord(n)
	if err != nil || !ok {
		v, err := json.Marshal(n)
		return v, nil, err
	}
	nodes := n.Spec.Nodes
	var old []spec.Node
	if prev != nil {
		old = prev.nodes
	}
	same, end := sameEnds(old, nodes)
	size := len(head) + len(tail) + 2
	if prev != nil {
		size += len(prev.raw) // about the members' bytes
	}
	out := make([]byte, 0, size)
	out = append(out, head...)
	out = append(out, '[')
	at := make([][2]int, len(nodes))
	for i := range nodes {
		if i > 0 {
			out = append(out, ',')
		}
		start := len(out)
		switch j := i - (len(nodes) - len(old)); {
		case i < same:
			out = append(out, prev.bytes(i)...)
		case len(nodes)-i <= end:
			out = append(out, prev.bytes(j)...)
		default:
			b, err := json.Marshal(&nodes[i])
			if err != nil {
				return nil, nil, err
			}
			out = append(out, b...)
		}
		at[i] = [2]int{start, len(out)}
	}
	out = append(out, ']')
	out = append(out, tail...)
	return out, at, nil
}

// sameEnds returns how many members a and b have the same at their
// heads, and then at their tails.
func sameEnds(a, b []spec.Node) (head, tail int) {
	for head < len(a) && head < len(b) && sameNode(&a[head], &b[head]) {
		head++
	}
	for tail < len(a)-head && tail < len(b)-head && sameNode(&a[len(a)-1-tail], &b[len(b)-1-tail]) {
		tail++
	}
	return head, tail
}

// splitRecord returns n's encoding before its spec's members' array and
// after it. It finds them from the encodings of n with a spec without
// members and of n without a spec, which share what comes before the spec
// and after it; ok is false if they do not look so (the record's shape
// changed), and the caller encodes n whole.
func splitRecord(n *Network) (head, tail []byte, ok bool, err error) {
	bare, s := *n, *n.Spec
	s.Nodes = nil
	bare.Spec = &s
	withSpec, err := json.Marshal(&bare)
	if err != nil {
		return nil, nil, false, err
	}
	bare.Spec = nil
	without, err := json.Marshal(&bare)
	if err != nil {
		return nil, nil, false, err
	}
	specLen := len(withSpec) - len(without) // `,"spec":{...,"nodes":null}`
	if specLen <= 0 {
		return nil, nil, false, nil
	}
	// What both share before the spec ends where the spec's key starts.
	p := 0
	for p < len(without) && withSpec[p] == without[p] {
		p++
	}
	const key, null = `,"spec":{`, `"nodes":null}`
	for ; p >= 0; p-- {
		if bytes.HasPrefix(withSpec[p:], []byte(key)) {
			break
		}
	}
	if p < 0 || !bytes.Equal(withSpec[:p], without[:p]) || !bytes.Equal(withSpec[p+specLen:], without[p:]) ||
		!bytes.HasSuffix(withSpec[:p+specLen], []byte(null)) {
		return nil, nil, false, nil
	}
	cut := p + specLen - len(null) + len(`"nodes":`)
	return withSpec[:cut], withSpec[p+specLen-1:], true, nil
}
