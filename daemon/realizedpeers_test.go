package daemon

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/peers"
	"github.com/znet/znet/spec"
)

// TestDiffRememberedMatchesDiff checks diffRemembered against what it
// replaced, peers.Diff against the device built from the record, on random
// peer lists: keys shared or not, endpoints of every form (none, IPv4,
// IPv6, mapped, zoned), keepalives, allowed IPs canonical or not (invalid,
// mapped, unmasked), the same peer in both lists or changed in one field.
func TestDiffRememberedMatchesDiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	endpoints := []netip.AddrPort{
		{},
		netip.MustParseAddrPort("198.18.0.1:51820"),
		netip.MustParseAddrPort("198.18.0.2:51821"),
		netip.MustParseAddrPort("[fd00::1]:51820"),
		netip.MustParseAddrPort("[::ffff:198.18.0.1]:51820"),
		netip.MustParseAddrPort("[fe80::1%eth0]:51820"),
	}
	prefixes := []netip.Prefix{
		netip.MustParsePrefix("10.20.1.0/24"),
		netip.MustParsePrefix("10.20.2.0/24"),
		netip.MustParsePrefix("fd00:0:0:1::/64"),
		netip.MustParsePrefix("10.20.1.200/32"),
		netip.MustParsePrefix("10.20.3.9/24"),         // not masked
		netip.MustParsePrefix("::ffff:10.20.4.0/120"), // mapped
		{}, // an access peer without an IPv6 address
	}
	keys := make([]wgtypes.Key, 24) // past lastIndex's few misses
	for i := range keys {
		keys[i][0] = byte(i + 1)
	}
	randomPeer := func(key wgtypes.Key) peers.Peer {
		p := peers.Peer{PublicKey: key, Endpoint: endpoints[rng.IntN(len(endpoints))],
			Keepalive: time.Duration(rng.IntN(2)*25) * time.Second}
		for range rng.IntN(3) {
			p.AllowedIPs = append(p.AllowedIPs, prefixes[rng.IntN(len(prefixes))])
		}
		return p
	}
	randomList := func() []peers.Peer {
		var out []peers.Peer
		for _, i := range rng.Perm(len(keys))[:rng.IntN(len(keys))] {
			out = append(out, randomPeer(keys[i]))
		}
		return out
	}
	var key wgtypes.Key
	for round := range 3000 {
		last, desired := randomList(), randomList()
		if round%2 == 0 {
			// Mostly the same peers, as an apply after another.
			desired = append([]peers.Peer(nil), last...)
			for i := range desired {
				switch rng.IntN(6) {
				case 0:
					desired[i].Endpoint = endpoints[rng.IntN(len(endpoints))]
				case 1:
					desired[i].Keepalive = 25 * time.Second
				case 2:
					desired[i].AllowedIPs = randomPeer(desired[i].PublicKey).AllowedIPs
				}
			}
			if len(desired) > 0 && rng.IntN(2) == 0 {
				desired = desired[1:]
			}
		}
		want := peers.Diff(desired, configuredDevice(key, 51820, last).Peers)
		got := diffRemembered(desired, last)
		if len(want.Peers) == 0 {
			require.Empty(t, got.Peers, "round %d", round)
			continue
		}
		require.Equal(t, want, got, "round %d:\nlast    %v\ndesired %v", round, last, desired)
	}
}

// BenchmarkDiffRemembered compares, at a thousand peers and one added,
// the difference taken from the record with the device built from it and
// diffed (what an apply did before).
func BenchmarkDiffRemembered(b *testing.B) {
	s := &spec.Spec{Name: "churn", Generation: 1, IPRange: netip.MustParsePrefix("10.64.0.0/12"),
		Nodes: []spec.Node{{ID: "self", Subnet: netip.MustParsePrefix("10.64.1.0/24"), PublicKey: publicKey(b), Endpoint: "198.18.0.1:51820"}}}
	for i := range churnMembers + 1 {
		s.Nodes = append(s.Nodes, churnMember(b, i))
	}
	s.SetDefaults()
	desired, err := peers.Desired(context.Background(), s, "self", nil)
	require.NoError(b, err)
	last := desired[:churnMembers]
	var key wgtypes.Key
	b.Run("device+diff", func(b *testing.B) {
		for b.Loop() {
			peers.Diff(desired, configuredDevice(key, 51820, last).Peers)
		}
	})
	b.Run("remembered", func(b *testing.B) {
		for b.Loop() {
			diffRemembered(desired, last)
		}
	})
}
