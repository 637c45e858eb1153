package daemon

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/overlay/overlaytest"
	"github.com/znet/znet/spec"
)

// TestApplyRollback makes the backend fail during applies and checks that
// the node stays at its last good state, with its workloads plumbed.
func TestApplyRollback(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.use("shop")
	res, err := n.d.Reserve(ctx, "shop")
	require.NoError(t, err)
	self := spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24"), Endpoint: fmt.Sprintf("198.18.0.1:%d", res.ListenPort)}
	b := member(t, "node2", "10.20.2.0/24")
	c := member(t, "node3", "10.20.3.0/24")
	gen1 := specOf("shop", 1, self, b)
	gen2 := specOf("shop", 2, self, b, c)
	_, err = n.d.Apply(ctx, gen1)
	require.NoError(t, err)
	ws := n.newWorkloadNS(t)
	_, err = n.d.Attach(ctx, "shop", api.AttachRequest{Name: "web", NetNS: namespaces.Path(ws)})
	require.NoError(t, err)

	ns := n.nsName("shop")
	wg := n.dev("shop").IfName
	subB := subnetsFor(t, gen1, b)
	subC := subnetsFor(t, gen2, c)
	oldPeers := []string{peerLine(b.PublicKey, subB.V4, subB.V6)}
	oldRoutes := sortedStrings([]string{subB.V4.String() + " dev " + wg, subB.V6.String() + " dev " + wg})
	pid := n.real.PID(n.dev("shop"))
	require.Positive(t, pid)

	// stillGen1 checks that the node is exactly at generation 1.
	stillGen1 := func(t *testing.T) {
		t.Helper()
		det, err := n.d.Network(ctx, "shop")
		require.NoError(t, err)
		assert.Equal(t, uint64(1), det.Spec.Generation)
		assert.Len(t, det.Spec.Nodes, 2)
		assert.Equal(t, uint64(1), det.Status.Generation)
		assert.Equal(t, oldPeers, n.peersOf(t, "shop"), "the old peers are on the device")
		v := view(t, ns)
		assert.Equal(t, oldRoutes, v.routeStrings(wg))
		assert.Contains(t, v.links, hostIfName("web"), "the workload stays plumbed")
		assert.Contains(t, v.chains, "bridge znet port-"+hostIfName("web"))
		assert.Contains(t, view(t, ws).links, "znet0")
		assert.Equal(t, pid, n.real.PID(n.dev("shop")), "same data plane")
	}

	tests := []struct {
		name  string
		op    string
		after bool
	}{
		{"configure fails before changing the device", overlaytest.OpConfigure, false},
		{"configure fails after changing the device", overlaytest.OpConfigure, true},
		{"ensure fails", overlaytest.OpEnsure, false},
	}
	for _, tt := range tests {
		step(t, tt.name, func(t *testing.T) {
			n.backend.failNext(tt.op, errInjected, tt.after)
			_, err := n.d.Apply(ctx, gen2)
			require.ErrorIs(t, err, errInjected)
			stillGen1(t)
		})
	}

	step(t, "the same generation applies once the backend works", func(t *testing.T) {
		r, err := n.d.Apply(ctx, gen2)
		require.NoError(t, err)
		assert.True(t, r.Changed)
		assert.Equal(t, sortedStrings([]string{
			peerLine(b.PublicKey, subB.V4, subB.V6),
			peerLine(c.PublicKey, subC.V4, subC.V6),
		}), n.peersOf(t, "shop"))
		assert.Contains(t, view(t, ns).links, hostIfName("web"), "the workload stays plumbed")
		assert.Contains(t, view(t, ws).links, "znet0")
		assert.Equal(t, pid, n.real.PID(n.dev("shop")), "same data plane")
	})

	firsts := []struct {
		name    string
		network string
		op      string
		after   bool
	}{
		{"a first apply whose device cannot be configured leaves nothing", "blog", overlaytest.OpConfigure, true},
		{"a first apply whose device cannot be made leaves nothing", "news", overlaytest.OpEnsure, false},
	}
	for _, tt := range firsts {
		step(t, tt.name, func(t *testing.T) {
			n.use(tt.network)
			s := specOf(tt.network, 1, spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24")})
			n.backend.failNext(tt.op, errInjected, tt.after)
			_, err := n.d.Apply(ctx, s)
			require.ErrorIs(t, err, errInjected)
			assert.False(t, namespaces.Exists(n.nsName(tt.network)), "no namespace is left")
			assert.Zero(t, n.real.PID(n.dev(tt.network)), "no data plane is left")
			det, err := n.d.Network(ctx, tt.network)
			require.NoError(t, err, "the reservation made for the apply is kept")
			assert.Nil(t, det.Spec)

			r, err := n.d.Apply(ctx, s)
			require.NoError(t, err, "a retry works")
			assert.True(t, r.Changed)
			assert.True(t, namespaces.Exists(n.nsName(tt.network)))
		})
	}
}
