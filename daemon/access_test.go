package daemon

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/spec"
)

// TestAccessPinsTheSubnet checks that an access peer, whose address comes
// from this node's subnet, keeps that subnet and the ranges from changing,
// as workloads do; and that removing it frees them.
func TestAccessPinsTheSubnet(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.use("shop")
	res, err := n.d.Reserve(ctx, "shop")
	require.NoError(t, err)
	self := spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24"), Endpoint: fmt.Sprintf("198.18.0.1:%d", res.ListenPort)}
	s := specOf("shop", 1, self)
	_, err = n.d.Apply(ctx, s)
	require.NoError(t, err)
	key := publicKey(t)
	g, err := n.d.AddAccess(ctx, "shop", api.AccessRequest{Name: "alice", PublicKey: key})
	require.NoError(t, err)
	require.Equal(t, mustAddr("10.20.1.2"), g.IPv4)
	assert.Equal(t, []string{peerLine(key, netip.PrefixFrom(g.IPv4, 32), netip.PrefixFrom(g.IPv6, 128))}, n.peersOf(t, "shop"))

	moved := self
	moved.Subnet = mustPrefix("10.20.5.0/24")
	_, err = n.d.Apply(ctx, specOf("shop", 2, moved))
	requireAPIError(t, err, http.StatusConflict, "nodes[0].subnet")
	wider := specOf("shop", 2, self)
	wider.IPRange = mustPrefix("10.20.0.0/15")
	_, err = n.d.Apply(ctx, wider)
	requireAPIError(t, err, http.StatusConflict, "ip_range")
	det, err := n.d.Network(ctx, "shop")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), det.Spec.Generation)
	assert.Equal(t, map[netip.Addr]string{g.IPv4: "access/alice"}, n.allocated(t, "shop"))

	require.NoError(t, n.d.RemoveAccess(ctx, "shop", "alice"))
	assert.Empty(t, n.peersOf(t, "shop"), "the peer is cut off")
	_, err = n.d.Apply(ctx, specOf("shop", 2, moved))
	require.NoError(t, err, "without access peers the subnet may move")
	assert.Equal(t, link{name: bridgeName, up: true, mtu: 1420, addrs: []netip.Prefix{
		mustPrefix("10.20.5.1/24"), netip.PrefixFrom(subnetsFor(t, s, moved).Gateway6, 64),
	}}, view(t, n.nsName("shop")).links[bridgeName])
}
