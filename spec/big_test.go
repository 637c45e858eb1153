package spec_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/spec"
)

// bigSpec returns a valid spec of n (at most 65536) members.
func bigSpec(n int) *spec.Spec {
	s := &spec.Spec{Name: "big", Generation: 1, IPRange: netip.MustParsePrefix("10.0.0.0/8")}
	s.SetDefaults()
	for i := range n {
		var k [32]byte
		binary.BigEndian.PutUint32(k[:], uint32(i))
		s.Nodes = append(s.Nodes, spec.Node{
			ID:        fmt.Sprintf("n%d", i),
			Subnet:    netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i)}), 24),
			PublicKey: base64.StdEncoding.EncodeToString(k[:]),
		})
	}
	return s
}

func bigDoc(t *testing.T, n int) []byte {
	return marshal(t, bigSpec(n))
}

func TestDecodeLargestDocument(t *testing.T) {
	n := 1
	for len(bigDoc(t, n*2)) <= spec.MaxSize {
		n *= 2
	}
	for len(bigDoc(t, n+256)) <= spec.MaxSize {
		n += 256
	}
	data := bigDoc(t, n)
	s, err := spec.Decode(data, "")
	require.NoError(t, err)
	require.Len(t, s.Nodes, n)
}

// BenchmarkDecode decodes (and validates) a spec of a thousand members, the
// first step of every apply on such a network.
func BenchmarkDecode(b *testing.B) {
	doc, err := json.Marshal(bigSpec(1000))
	require.NoError(b, err)
	for b.Loop() {
		_, err := spec.Decode(doc, "")
		require.NoError(b, err)
	}
}

// BenchmarkValidate shows how Validate scales with the number of members
// (n log n; the pairwise checks it replaced took a second at 10,000).
func BenchmarkValidate(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		s := bigSpec(n)
		slices.Reverse(s.Nodes) // subnets in falling address order
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if err := s.Validate(""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestOverlapMatchesPairwise compares Validate's indexed overlap check with
// the obvious pairwise one on random member subnets.
func TestOverlapMatchesPairwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ipRange := netip.MustParsePrefix("10.0.0.0/16")
	for round := range 2000 {
		s := &spec.Spec{Name: "r", Generation: 1, IPRange: ipRange, MTU: spec.DefaultMTU}
		s.SetDefaults()
		want := ""
		for i := range 2 + rng.IntN(12) {
			bits := 18 + rng.IntN(13)
			addr := netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(4)), byte(rng.IntN(256))})
			p := netip.PrefixFrom(addr, bits).Masked()
			s.Nodes = append(s.Nodes, spec.Node{ID: fmt.Sprintf("n%d", i), Subnet: p, PublicKey: key(byte(i + 1))})
			for j := range i {
				if want == "" && s.Nodes[j].Subnet.Overlaps(p) {
					want = fmt.Sprintf("nodes[%d].subnet", i)
				}
			}
		}
		err := s.Validate("")
		if want == "" {
			require.NoError(t, err, "round %d: %+v", round, s.Nodes)
			continue
		}
		var fe *spec.FieldError
		require.ErrorAs(t, err, &fe, "round %d", round)
		require.Equal(t, want, fe.Field, "round %d: %v", round, err)
		require.Contains(t, fe.Reason, "overlaps")
	}
}

// TestDecodeAllocations holds the decode of a thousand members to a few
// allocations each (its strings, mostly): it made some 25 each, a path
// per member and growing sets, which cost milliseconds at every apply.
// Validate alone makes a handful for the whole spec (its indexes).
func TestDecodeAllocations(t *testing.T) {
	s := bigSpec(1000)
	doc := marshal(t, s)
	decode := testing.AllocsPerRun(5, func() {
		_, err := spec.Decode(doc, "")
		require.NoError(t, err)
	})
	validate := testing.AllocsPerRun(5, func() { require.NoError(t, s.Validate("")) })
	assert.LessOrEqual(t, decode, 4.0*1000, "allocations of one decode")
	assert.LessOrEqual(t, validate, 50.0, "allocations of one Validate")
}
