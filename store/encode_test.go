package store

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/znet/znet/ipam"
	"github.com/znet/znet/spec"
)

// randomNode is a member whose every field is drawn, strings with what
// json escapes (quotes, <, &, non-ASCII) now and then.
func randomNode(r *rand.Rand, i int) spec.Node {
	n := spec.Node{ID: fmt.Sprintf("n%d", i), PublicKey: fmt.Sprintf("key%d=", r.IntN(1000)),
		Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(r.IntN(256)), byte(r.IntN(256)), 0}), 24)}
	if r.IntN(10) == 0 {
		n.ID += []string{`"q"`, "<a&b>", "é", `\`}[r.IntN(4)]
	}
	if r.IntN(3) == 0 {
		n.Endpoint = fmt.Sprintf("198.18.%d.%d:%d", r.IntN(256), r.IntN(256), 1+r.IntN(65535))
	}
	switch r.IntN(6) {
	case 0:
		n.AllowedIPs = []netip.Prefix{}
	case 1:
		n.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("10.200.0.0/16"), netip.MustParsePrefix("fd00::/64")}
	}
	if r.IntN(6) == 0 {
		n.LinkAddress = netip.AddrFrom4([4]byte{100, 64, byte(r.IntN(256)), byte(r.IntN(256))})
	}
	if r.IntN(20) == 0 {
		n.Subnet = netip.Prefix{}
	}
	return n
}

// mutate changes s as applies do: members added, removed or changed
// anywhere, a few at a time, or the rest of the spec.
func mutate(r *rand.Rand, s *spec.Spec, next *int) {
	for range 1 + r.IntN(3) {
		i := r.IntN(len(s.Nodes) + 1)
		switch r.IntN(5) {
		case 0:
			*next++
			s.Nodes = slices.Insert(s.Nodes, i, randomNode(r, *next))
		case 1:
			if i < len(s.Nodes) && len(s.Nodes) > 1 {
				s.Nodes = slices.Delete(s.Nodes, i, i+1)
			}
		case 2:
			if i < len(s.Nodes) {
				s.Nodes[i] = randomNode(r, *next+1000000)
			}
		case 4:
			if i < len(s.Nodes) { // one field of a member: what sameNode must see
				s.Nodes[i] = oneFieldOf(s.Nodes[i], randomNode(r, *next), r.IntN(6))
			}
		case 3:
			s.Generation++
			s.MTU = r.IntN(2) * 1420
			s.Egress = r.IntN(2) == 0
		}
	}
}

// oneFieldOf returns n with its field f taken from o.
func oneFieldOf(n, o spec.Node, f int) spec.Node {
	switch f {
	case 0:
		n.Subnet = o.Subnet
	case 1:
		n.PublicKey = o.PublicKey
	case 2:
		n.Endpoint = o.Endpoint
	case 3:
		n.AllowedIPs = o.AllowedIPs
	case 4:
		n.LinkAddress = o.LinkAddress
	case 5:
		n.ID = o.ID
	}
	return n
}

// TestEncodeNetworkMatchesMarshal holds encodeNetwork, fed the last
// record's bytes as PutNetwork feeds it, to json.Marshal over random
// records and random changes of their members, around minEncodeNodes.
func TestEncodeNetworkMatchesMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for run := range 40 {
		s := &spec.Spec{Name: "shop", Generation: 1, IPRange: netip.MustParsePrefix("10.0.0.0/8"),
			IPv6Range: netip.MustParsePrefix("fd3c:9a1e:77b2::/48")}
		next := 0
		for range minEncodeNodes - 5 + r.IntN(80) {
			next++
			s.Nodes = append(s.Nodes, randomNode(r, next))
		}
		n := &Network{Name: "shop", PrivateKey: "priv<&>", PublicKey: "pub", ListenPort: 40000 + run, Spec: s}
		if run%2 == 0 {
			a, err := ipam.NewAllocator(netip.MustParsePrefix("10.1.2.0/24"))
			require.NoError(t, err)
			_, err = a.Allocate("web")
			require.NoError(t, err)
			n.Addrs = a
		}
		if run%3 == 0 {
			n.Zos = &ZosOrigin{Twin: 7, Name: "z", Version: 2}
		}
		var prev *encodedNodes
		for step := range 60 {
			got, at, err := encodeNetwork(n, prev)
			require.NoError(t, err)
			want, err := json.Marshal(n)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got), "run %d step %d", run, step)
			prev = nil
			if at != nil {
				prev = &encodedNodes{nodes: decoded(s).Nodes, raw: got, at: at}
				for i := range s.Nodes {
					b, err := json.Marshal(&s.Nodes[i])
					require.NoError(t, err)
					require.Equal(t, string(b), string(prev.bytes(i)), "member %d's place", i)
				}
			}
			mutate(r, s, &next)
		}
	}
}

// TestPutNetworkStoresMarshal checks that what PutNetwork stores, one
// member added or removed after another, is json.Marshal's encoding, and
// that the members' bytes came from the last record (the reuse is on).
func TestPutNetworkStoresMarshal(t *testing.T) {
	st := open(t, t.TempDir())
	n := bigNetwork(1000)
	stored := func() []byte {
		var v []byte
		require.NoError(t, st.View(func(tx *Tx) error {
			v = slices.Clone(tx.tx.Bucket(bucketNetworks).Get([]byte(n.Name)))
			return nil
		}))
		return v
	}
	extra := n.Spec.Nodes[500]
	for i := range 6 {
		if i%2 == 0 {
			n.Spec.Nodes = slices.Delete(n.Spec.Nodes, 500, 501)
		} else {
			n.Spec.Nodes = slices.Insert(n.Spec.Nodes, 500, extra)
		}
		n.Spec.Generation++
		require.NoError(t, st.Update(func(tx *Tx) error { return tx.PutNetwork(n) }))
		want, err := json.Marshal(n)
		require.NoError(t, err)
		require.Equal(t, string(want), string(stored()))
		require.NotNil(t, st.records.encoded(n.Name), "the record's members' places are kept")
	}
}

func BenchmarkPutNetwork(b *testing.B) {
	st, err := Open(b.TempDir())
	require.NoError(b, err)
	defer func() { _ = st.Close() }()
	n := bigNetwork(1000)
	extra := n.Spec.Nodes[999]
	base := n.Spec.Nodes[:999]
	for i := 0; b.Loop(); i++ {
		n.Spec.Nodes = base
		if i%2 == 0 {
			n.Spec.Nodes = append(slices.Clip(base), extra)
		}
		n.Spec.Generation++
		if err := st.Update(func(tx *Tx) error { return tx.PutNetwork(n) }); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeNetwork(b *testing.B) {
	n := bigNetwork(1000)
	v, at, err := encodeNetwork(n, nil)
	require.NoError(b, err)
	prev := &encodedNodes{nodes: decoded(n.Spec).Nodes, raw: v, at: at}
	n.Spec.Nodes = n.Spec.Nodes[:999]
	b.Run("marshal", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(n)
		}
	})
	b.Run("parts", func(b *testing.B) {
		for b.Loop() {
			_, _, _ = encodeNetwork(n, prev)
		}
	})
}
