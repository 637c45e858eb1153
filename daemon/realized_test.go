package daemon

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/firewall"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/overlay/overlaytest"
	"github.com/znet/znet/spec"
)

// TestReapplyRepairsWhatRealizeRemembers checks that the routes and the
// firewall realize skips when it remembers them in place are rebuilt when
// something else changed them: the firewall removed (the nftables
// generation moves), the WireGuard link taken down (its routes go), a
// route deleted by hand (an apply that changes nothing forgets what it
// remembers: it is how an operator repairs a network).
func TestReapplyRepairsWhatRealizeRemembers(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n, self, other := shopNode(t)
	ctx := testCtx(t)
	ns := n.nsName("shop")
	wg := n.dev("shop").IfName
	s := specOf("shop", 1, self, other)
	_, err := n.d.Apply(ctx, s)
	require.NoError(t, err)
	sub := subnetsFor(t, s, other)
	routes := []string{sub.V4.String() + " dev " + wg, sub.V6.String() + " dev " + wg}
	require.Equal(t, routes, sortedStrings(view(t, ns).routeStrings(wg)))
	require.Equal(t, []string{"bridge znet", "inet znet"}, view(t, ns).tables)

	tests := []struct {
		name    string
		breakIt func(t *testing.T)
	}{
		{"firewall removed", func(t *testing.T) {
			h, err := namespaces.Open(ns)
			require.NoError(t, err)
			defer func() { _ = h.Close() }()
			require.NoError(t, firewall.Remove(h))
			require.Empty(t, view(t, ns).tables)
		}},
		{"link down", func(t *testing.T) {
			h, err := namespaces.Open(ns)
			require.NoError(t, err)
			defer func() { _ = h.Close() }()
			nl, err := netlink.NewHandleAt(h)
			require.NoError(t, err)
			defer nl.Close()
			link, err := nl.LinkByName(wg)
			require.NoError(t, err)
			require.NoError(t, nl.LinkSetDown(link))
			require.Empty(t, view(t, ns).routeStrings(wg))
		}},
		{"a route deleted by hand", func(t *testing.T) {
			out, err := exec.Command("ip", "-n", ns, "route", "del", sub.V4.String(), "dev", wg).CombinedOutput()
			require.NoError(t, err, string(out))
			require.Len(t, view(t, ns).routeStrings(wg), 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.breakIt(t)
			_, err := n.d.Apply(ctx, s) // the same generation: a repair
			require.NoError(t, err)
			v := view(t, ns)
			assert.Equal(t, routes, sortedStrings(v.routeStrings(wg)))
			assert.Equal(t, []string{"bridge znet", "inet znet"}, v.tables)
		})
	}
}

// TestApplyConfiguresFromWhatItRemembers checks that an apply that changes
// the members diffs against what the data plane was last configured with,
// not a dump of the device, and that the dump comes back when the record
// cannot be trusted: a replaced data plane (a new pid) and an apply that
// changes nothing (a repair).
func TestApplyConfiguresFromWhatItRemembers(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n, self, other := shopNode(t)
	ctx := testCtx(t)
	third := member(t, "node3", "10.20.3.0/24")
	third.Endpoint = "198.18.0.3:40000"
	dev := n.dev("shop")
	peerKeys := func() []string {
		d, err := n.real.Show(ctx, dev)
		require.NoError(t, err)
		var out []string
		for _, p := range d.Peers {
			out = append(out, p.PublicKey.String())
		}
		return sortedStrings(out)
	}
	_, err := n.d.Apply(ctx, specOf("shop", 1, self, other))
	require.NoError(t, err)

	shows := n.backend.count(overlaytest.OpShow)
	_, err = n.d.Apply(ctx, specOf("shop", 2, self, other, third))
	require.NoError(t, err)
	assert.Equal(t, shows, n.backend.count(overlaytest.OpShow), "a member added without a dump")
	assert.Equal(t, sortedStrings([]string{other.PublicKey, third.PublicKey}), peerKeys())
	_, err = n.d.Apply(ctx, specOf("shop", 3, self, third))
	require.NoError(t, err)
	assert.Equal(t, shows, n.backend.count(overlaytest.OpShow), "a member removed without a dump")
	assert.Equal(t, []string{third.PublicKey}, peerKeys())

	// A data plane replaced behind the record: the new one starts empty.
	require.NoError(t, unix.Kill(n.real.PID(dev), unix.SIGKILL))
	_, err = n.d.Apply(ctx, specOf("shop", 4, self, other, third))
	require.NoError(t, err)
	assert.Greater(t, n.backend.count(overlaytest.OpShow), shows, "a new data plane is read")
	assert.Equal(t, sortedStrings([]string{other.PublicKey, third.PublicKey}), peerKeys())

	// A repair (the same generation) reads the device again.
	shows = n.backend.count(overlaytest.OpShow)
	_, err = n.d.Apply(ctx, specOf("shop", 4, self, other, third))
	require.NoError(t, err)
	assert.Greater(t, n.backend.count(overlaytest.OpShow), shows, "a repair reads the device")
}

// shopNode starts a node for network "shop" and returns it with its own
// entry (key left to the reservation) and a public member node2.
func shopNode(t *testing.T) (n *testNode, self, other spec.Node) {
	n = newTestNode(t)
	n.use("shop")
	self = member(t, n.id, "10.20.1.0/24")
	self.PublicKey = ""
	other = member(t, "node2", "10.20.2.0/24")
	other.Endpoint = "198.18.0.2:40000"
	return n, self, other
}
