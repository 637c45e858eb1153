package daemon

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/peers"
	"github.com/znet/znet/spec"
	"golang.zx2c4.com/wireguard/device"
)

// TestStaggeredHandshakes checks on the real data plane that of two public
// members only the one whose id sorts lower starts a handshake when the
// peer is added (StartDelay later), and the other starts one StaggerDelay
// later; hidden members are never waited for.
func TestStaggeredHandshakes(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newTestNode(t) // ids start with "zt"
	ctx := testCtx(t)
	me, low, high := staggerMembers(t, n, "stag")
	hidden := spec.Node{ID: "ab", PublicKey: publicKey(t), Subnet: mustPrefix("10.20.4.0/24")}
	_, err := n.d.Apply(ctx, specOf("stag", 1, me, low, high, hidden))
	require.NoError(t, err)

	keepalives := func() map[string]time.Duration {
		dev, err := n.real.Show(ctx, n.dev("stag"))
		require.NoError(t, err)
		out := map[string]time.Duration{}
		for _, p := range dev.Peers {
			out[p.PublicKey.String()] = p.PersistentKeepaliveInterval
		}
		return out
	}
	ka := keepalives()
	assert.Zero(t, ka[low.PublicKey], "the member with the lower id starts the link; we wait")
	assert.Zero(t, ka[high.PublicKey], "we start the link to the member with the higher id, StartDelay later")
	assert.Zero(t, ka[hidden.PublicKey], "a hidden member starts its links itself")
	assert.Eventually(t, func() bool { return keepalives()[high.PublicKey] == peers.Keepalive },
		peers.StartDelay+time.Second, 20*time.Millisecond, "the keepalive to the higher id comes after StartDelay")
	assert.Zero(t, keepalives()[low.PublicKey], "still waiting for the lower id")
	assert.Eventually(t, func() bool { return keepalives()[low.PublicKey] == peers.Keepalive },
		peers.StaggerDelay+3*time.Second, 50*time.Millisecond, "the keepalive comes after the stagger")

	// A re-apply that changes nothing does not touch the device.
	_, err = n.d.Apply(ctx, specOf("stag", 1, me, low, high, hidden))
	require.NoError(t, err)
	assert.Equal(t, peers.Keepalive, keepalives()[low.PublicKey])
}

// TestStaggerSilentThroughRetry checks on the real data plane that a node
// sends nothing at all (no initiation, no DNS packet that would start one)
// to a new member whose id sorts lower for longer than that member's 5 s
// WireGuard retry: that member's first initiation is lost when it comes
// before this node is configured, and if this node initiated before the
// retry had been answered the two would cross (issue 17). The link to the
// member with the higher id starts StartDelay after the apply.
func TestStaggerSilentThroughRetry(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newTestNode(t) // ids start with "zt"
	n.underlayLink(t, 1500, []string{"198.18.0.1/24"})
	ctx := testCtx(t)
	me, low, high := staggerMembers(t, n, "quiet")
	_, err := n.d.Apply(ctx, specOf("quiet", 1, me, low, high))
	require.NoError(t, err)
	applied := time.Now()

	sent := func() map[string]int64 {
		dev, err := n.real.Show(ctx, n.dev("quiet"))
		require.NoError(t, err)
		out := map[string]int64{}
		for _, p := range dev.Peers {
			out[p.PublicKey.String()] = p.TransmitBytes
		}
		return out
	}
	require.Eventually(t, func() bool { return sent()[high.PublicKey] > 0 }, peers.StartDelay+time.Second, 20*time.Millisecond,
		"the initiation to the member with the higher id goes StartDelay after the apply")
	for time.Since(applied) < device.RekeyTimeout+device.RekeyTimeoutJitterMaxMs*time.Millisecond+time.Second {
		require.Zero(t, sent()[low.PublicKey], "sent to the member with the lower id %s after the apply", time.Since(applied).Round(time.Millisecond))
		time.Sleep(100 * time.Millisecond)
	}
}

// staggerMembers reserves network on n and returns n's own member and two
// public members whose ids sort below ("aa") and above ("zz") n's.
func staggerMembers(t *testing.T, n *testNode, network string) (me, low, high spec.Node) {
	t.Helper()
	n.use(network)
	res, err := n.d.Reserve(testCtx(t), network)
	require.NoError(t, err)
	low = spec.Node{ID: "aa", PublicKey: publicKey(t), Subnet: mustPrefix("10.20.2.0/24"), Endpoint: "198.18.0.2:51820"}
	high = spec.Node{ID: "zz", PublicKey: publicKey(t), Subnet: mustPrefix("10.20.3.0/24"), Endpoint: "198.18.0.3:51820"}
	me = spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24"), Endpoint: fmt.Sprintf("198.18.0.1:%d", res.ListenPort)}
	return me, low, high
}
