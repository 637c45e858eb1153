package daemon

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/peers"
	"github.com/znet/znet/spec"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// TestStaggeredHandshakes checks on the real data plane that of two public
// members only the one whose key sorts lower starts a handshake when the
// peer is added, and the other starts one StaggerDelay later.
func TestStaggeredHandshakes(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.use("stag")
	res, err := n.d.Reserve(ctx, "stag")
	require.NoError(t, err)
	self, err := wgtypes.ParseKey(res.PublicKey)
	require.NoError(t, err)
	// One member whose key sorts below ours, one above.
	var low, high spec.Node
	for low.ID == "" || high.ID == "" {
		pub := publicKey(t)
		k, err := wgtypes.ParseKey(pub)
		require.NoError(t, err)
		if bytes.Compare(k[:], self[:]) < 0 {
			low = spec.Node{ID: "low", PublicKey: pub, Subnet: mustPrefix("10.20.2.0/24"), Endpoint: "198.18.0.2:51820"}
		} else {
			high = spec.Node{ID: "high", PublicKey: pub, Subnet: mustPrefix("10.20.3.0/24"), Endpoint: "198.18.0.3:51820"}
		}
	}
	me := spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24"), Endpoint: fmt.Sprintf("198.18.0.1:%d", res.ListenPort)}
	_, err = n.d.Apply(ctx, specOf("stag", 1, me, low, high))
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
	assert.Zero(t, ka[low.PublicKey], "the lower-keyed member initiates; we wait")
	assert.Equal(t, peers.Keepalive, ka[high.PublicKey], "we initiate towards the higher-keyed member at once")
	assert.Eventually(t, func() bool { return keepalives()[low.PublicKey] == peers.Keepalive },
		peers.StaggerDelay+3*time.Second, 50*time.Millisecond, "the keepalive comes after the stagger")

	// A re-apply that changes nothing does not touch the device.
	_, err = n.d.Apply(ctx, specOf("stag", 1, me, low, high))
	require.NoError(t, err)
	assert.Equal(t, peers.Keepalive, keepalives()[low.PublicKey])
}
