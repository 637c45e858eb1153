package peers

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func prefixes(s string) []netip.Prefix {
	var out []netip.Prefix
	for _, f := range strings.Fields(s) {
		out = append(out, netip.MustParsePrefix(f))
	}
	return out
}

func TestRoutes(t *testing.T) {
	tests := []struct {
		name   string
		public []bool
		self   string
		extra  []Peer
		want   string
	}{
		{
			name:   "hidden node routes the other hidden through the relay",
			public: []bool{true, true, false, false},
			self:   "node3",
			want:   "10.20.1.0/24,10.20.2.0/24,10.20.4.0/24,fd3c:9a1e:77b2:1::/64,fd3c:9a1e:77b2:2::/64,fd3c:9a1e:77b2:4::/64",
		},
		{
			name:   "access peers get host routes",
			public: []bool{true, true},
			self:   "node1",
			extra:  []Peer{{Name: "alice", PublicKey: testKey(8), AllowedIPs: prefixes("fd3c:9a1e:77b2:1::c8/128 10.20.1.200/32")}},
			want:   "10.20.1.200/32,10.20.2.0/24,fd3c:9a1e:77b2:1::c8/128,fd3c:9a1e:77b2:2::/64",
		},
		{
			name:   "no peers",
			public: []bool{false, false},
			self:   "node1",
			want:   "-",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desired, err := Desired(context.Background(), testSpec(tt.public...), tt.self, nil, tt.extra...)
			require.NoError(t, err)
			assert.Equal(t, tt.want, renderPrefixes(Routes(desired)))
		})
	}
}

func TestRouteDiff(t *testing.T) {
	tests := []struct {
		name     string
		have     string
		want     string
		add, del string
	}{
		{name: "nothing", add: "-", del: "-"},
		{name: "from nothing", want: "10.20.2.0/24 fd00:0:0:2::/64", add: "10.20.2.0/24,fd00:0:0:2::/64", del: "-"},
		{name: "to nothing", have: "10.20.2.0/24 fd00:0:0:2::/64", add: "-", del: "10.20.2.0/24,fd00:0:0:2::/64"},
		{name: "same", have: "10.20.2.0/24 10.20.3.0/24", want: "10.20.2.0/24 10.20.3.0/24", add: "-", del: "-"},
		{name: "same in another order and form", have: "10.20.3.0/24 10.20.2.0/24", want: "10.20.2.9/24 10.20.3.0/24 10.20.2.0/24", add: "-", del: "-"},
		{name: "mixed", have: "10.20.2.0/24 10.20.3.0/24 fd00:0:0:3::/64", want: "10.20.4.0/24 10.20.2.0/24 fd00:0:0:4::/64", add: "10.20.4.0/24,fd00:0:0:4::/64", del: "10.20.3.0/24,fd00:0:0:3::/64"},
		{name: "length matters", have: "10.20.0.0/16", want: "10.20.0.0/24", add: "10.20.0.0/24", del: "10.20.0.0/16"},
		{name: "mapped addresses are IPv4", have: "::ffff:10.20.2.0/120", want: "10.20.2.0/24", add: "-", del: "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			add, del := RouteDiff(prefixes(tt.have), prefixes(tt.want))
			assert.Equal(t, tt.add, renderPrefixes(add), "add")
			assert.Equal(t, tt.del, renderPrefixes(del), "del")
		})
	}
}

// TestRouteDiffMatchesSets compares RouteDiff with set arithmetic on
// random overlapping route lists.
func TestRouteDiffMatchesSets(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	random := func() []netip.Prefix {
		var ps []netip.Prefix
		for range rng.IntN(40) {
			a := netip.AddrFrom4([4]byte{10, 20, byte(rng.IntN(30)), 0})
			ps = append(ps, netip.PrefixFrom(a, 22+rng.IntN(3)).Masked())
		}
		return ps
	}
	for round := range 500 {
		have, want := random(), random()
		in := func(ps []netip.Prefix, p netip.Prefix) bool { return slices.Contains(ps, p) }
		var wantAdd, wantDel []netip.Prefix
		for _, p := range sortedSet(want) {
			if !in(have, p) {
				wantAdd = append(wantAdd, p)
			}
		}
		for _, p := range sortedSet(have) {
			if !in(want, p) {
				wantDel = append(wantDel, p)
			}
		}
		add, del := RouteDiff(have, want)
		require.Equal(t, wantAdd, add, "round %d add", round)
		require.Equal(t, wantDel, del, "round %d del", round)
	}
}

// TestSortedSetMatchesCompare checks the fast sortedSet, and asSortedSet
// that RouteDiff uses, against the plain one they replaced (canonical
// form, sorted with netip.Prefix.Compare, duplicates dropped) on random
// lists: both families, every length, mapped and invalid prefixes,
// duplicates, sorted and shuffled input, subnets of one length.
func TestSortedSetMatchesCompare(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	randomPrefix := func() netip.Prefix {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.IntN(4)) // few values: duplicates and ties
		}
		switch rng.IntN(10) {
		case 0:
			return netip.Prefix{}
		case 1, 2, 3, 4:
			return netip.PrefixFrom(netip.AddrFrom4([4]byte(b[:4])), rng.IntN(33))
		case 5:
			return netip.PrefixFrom(netip.AddrFrom16(netip.AddrFrom4([4]byte(b[:4])).As16()), rng.IntN(129)) // mapped
		default:
			bits := []int{rng.IntN(129), 64, 128}[rng.IntN(3)]
			return netip.PrefixFrom(netip.AddrFrom16(b), bits)
		}
	}
	reference := func(ps []netip.Prefix) []netip.Prefix {
		out := []netip.Prefix{}
		for _, p := range ps {
			if q, ok := canonicalPrefix(p); ok {
				out = append(out, q)
			}
		}
		slices.SortFunc(out, netip.Prefix.Compare)
		return slices.Compact(out)
	}
	for round := range 2000 {
		ps := make([]netip.Prefix, rng.IntN(60))
		for i := range ps {
			ps[i] = randomPrefix()
			if round%3 == 1 && ps[i].IsValid() {
				// Members' subnets: one length per family (IPv6's /64).
				bits := 64
				if ps[i].Addr().Is4() {
					bits = 24
				}
				ps[i] = netip.PrefixFrom(ps[i].Addr(), bits)
			}
		}
		if round%3 == 0 {
			ps = reference(ps) // a sorted set already, as RouteDiff gets
		}
		in := slices.Clone(ps)
		want := reference(ps)
		got := sortedSet(ps)
		require.Equal(t, in, ps, "round %d: the input changed", round)
		as := asSortedSet(ps)
		require.Equal(t, in, ps, "round %d: the input changed", round)
		if len(want) == 0 {
			require.Empty(t, got, "round %d", round)
			require.Empty(t, as, "round %d", round)
			continue
		}
		require.Equal(t, want, got, "round %d: %v", round, ps)
		require.Equal(t, want, as, "round %d: %v", round, ps)
	}
}

// BenchmarkRouteDiff is an apply's route change at a thousand members:
// the record of the routes against Routes of the desired peers, one
// member more.
func BenchmarkRouteDiff(b *testing.B) {
	d, err := Desired(context.Background(), churnSpec(1000), "n0", nil)
	require.NoError(b, err)
	have, want := Routes(d[1:]), Routes(d)
	for b.Loop() {
		if add, _ := RouteDiff(have, want); len(add) != 2 {
			b.Fatal(add)
		}
	}
}
