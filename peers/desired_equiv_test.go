package peers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/spec"
)

// randomSpec is a spec of up to 40 members drawn from small pools, so
// that ids, keys, subnets and allowed IPs collide now and then, with keys
// and prefixes that are malformed, host names found and not found, and
// members in any order: Desired's every path, errors included.
func randomSpec(r *rand.Rand) (*spec.Spec, string, []Peer) {
	s := &spec.Spec{Name: "shop", Generation: 1, IPRange: netip.MustParsePrefix("10.20.0.0/16"),
		IPv6Range: netip.MustParsePrefix("fd3c:9a1e:77b2::/48")}
	if r.IntN(8) == 0 {
		s.IPv6Range = netip.Prefix{} // NodeSubnets refuses it
	}
	pick := func(n int) bool { return r.IntN(n) == 0 }
	prefix := func() netip.Prefix {
		switch r.IntN(12) {
		case 0:
			return netip.Prefix{}
		case 1:
			return netip.MustParsePrefix("::ffff:10.20.3.0/120") // IPv4-mapped
		case 2:
			return s.IPRange
		case 3:
			return netip.MustParsePrefix("10.20.0.0/17")
		}
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 20, byte(r.IntN(60)), byte(r.IntN(2) * 128)}), 24+r.IntN(2))
	}
	for range 1 + r.IntN(40) {
		n := spec.Node{ID: fmt.Sprintf("n%d", r.IntN(60)), PublicKey: testKey(1 + r.IntN(200)).String(),
			Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 20, byte(r.IntN(60)), 0}), 24)}
		switch {
		case pick(40):
			n.PublicKey = "not a key"
		case pick(40):
			n.PublicKey = n.PublicKey[:40] + "====" // 44 characters, not 32 bytes
		case pick(40):
			n.Subnet = netip.MustParsePrefix("10.21.0.0/24") // outside the range
		}
		switch r.IntN(6) {
		case 0, 1:
			n.Endpoint = fmt.Sprintf("198.18.0.%d:40000", r.IntN(250))
		case 2:
			n.Endpoint = []string{"up.example:40000", "down.example:40000", "bad endpoint"}[r.IntN(3)]
		}
		if pick(5) {
			for range 1 + r.IntN(3) {
				n.AllowedIPs = append(n.AllowedIPs, prefix())
			}
		}
		s.Nodes = append(s.Nodes, n)
	}
	self := s.Nodes[r.IntN(len(s.Nodes))].ID
	if pick(30) {
		self = "stranger"
	}
	var extra []Peer
	for i := range r.IntN(4) {
		e := Peer{Name: fmt.Sprintf("a%d", i), PublicKey: testKey(1 + r.IntN(220))}
		for range r.IntN(3) {
			e.AllowedIPs = append(e.AllowedIPs, prefix())
		}
		extra = append(extra, e)
	}
	return s, self, extra
}

// TestDesiredMatchesReference holds Desired to desiredRef, the code it
// replaced, over random specs: the same peers (order, AllowedIPs, nil or
// empty alike) or the same error, sentinels included.
func TestDesiredMatchesReference(t *testing.T) {
	resolve := mapResolver(map[string]string{"up.example": "198.18.1.1"})
	sentinels := []error{ErrNotMember, ErrDuplicateKey, ErrDuplicatePrefix, ErrOverlapsSelf, ErrNoResolver}
	r := rand.New(rand.NewPCG(1, 2))
	outcomes := map[string]int{}
	for i := range 20000 {
		s, self, extra := randomSpec(r)
		var res Resolver
		if i%3 != 0 {
			res = resolve
		}
		want, wantErr := desiredRef(context.Background(), s, self, res, extra...)
		got, err := Desired(context.Background(), s, self, res, extra...)
		if wantErr != nil {
			require.EqualError(t, err, wantErr.Error(), "spec %d", i)
			for _, e := range sentinels {
				require.Equal(t, errors.Is(wantErr, e), errors.Is(err, e), "spec %d: %v", i, e)
			}
			outcomes["error"]++
			continue
		}
		require.NoError(t, err, "spec %d", i)
		require.Equal(t, want, got, "spec %d", i)
		outcomes["peers"]++
	}
	// Both sides drawn often enough to mean something.
	require.Greater(t, outcomes["error"], 1000, "%v", outcomes)
	require.Greater(t, outcomes["peers"], 1000, "%v", outcomes)
}

// TestDesiredPeersDoNotShareArrays checks that appending to one peer's
// AllowedIPs, which Desired cuts from one array, leaves the next peer's
// as they were.
func TestDesiredPeersDoNotShareArrays(t *testing.T) {
	got, err := Desired(context.Background(), testSpec(true, true, true), "node1", nil)
	require.NoError(t, err)
	require.Len(t, got, 2)
	next := renderPrefixes(got[1].AllowedIPs)
	_ = append(got[0].AllowedIPs, netip.MustParsePrefix("192.0.2.0/24"))
	require.Equal(t, next, renderPrefixes(got[1].AllowedIPs))
}

// TestParseKeyMatchesWgtypes holds ParseKey to wgtypes.ParseKey: the
// same key or the same error, for keys well and badly written.
func TestParseKeyMatchesWgtypes(t *testing.T) {
	good := testKey(7).String()
	inputs := []string{good, "", "not a key", good[:43], good + "=", good[:42] + "B=", good[:42] + "\n=",
		good[:40] + "====", "AAAA", good[:43] + "A", strings.Repeat("/", 44)}
	r := rand.New(rand.NewPCG(7, 8))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n-_"
	for range 5000 {
		b := []byte(good)
		for range 1 + r.IntN(3) {
			b[r.IntN(len(b))] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		want, wantErr := wgtypes.ParseKey(in)
		got, err := ParseKey(in)
		if wantErr != nil {
			require.EqualError(t, err, wantErr.Error(), "%q", in)
			continue
		}
		require.NoError(t, err, "%q", in)
		require.Equal(t, want, got, "%q", in)
	}
}
