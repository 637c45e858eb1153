package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/overlay/overlaytest"
	"github.com/znet/znet/spec"
)

// killAndWait SIGKILLs process pid and waits until it has exited.
func killAndWait(t *testing.T, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	require.NoError(t, err)
	defer func() { _ = unix.Close(fd) }()
	require.NoError(t, unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0))
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 5000)
	require.NoError(t, err)
	require.Equal(t, 1, n, "process %d did not exit", pid)
}

// deleteAndWait deletes namespace name and waits until the kernel freed it.
func deleteAndWait(t *testing.T, name string) {
	t.Helper()
	id, err := namespaces.Identify(name)
	require.NoError(t, err)
	require.NoError(t, namespaces.Delete(name))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, namespaces.WaitGone(ctx, id))
}

// TestRecover restarts the daemon on a machine that kept running, then
// simulates a reboot, and checks that Recover brings everything back.
func TestRecover(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.use("shop")
	n.use("ghost")
	res, err := n.d.Reserve(ctx, "shop")
	require.NoError(t, err)
	self := spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24"), Endpoint: fmt.Sprintf("198.18.0.1:%d", res.ListenPort)}
	other := member(t, "node2", "10.20.2.0/24")
	s := specOf("shop", 1, self, other)
	_, err = n.d.Apply(ctx, s)
	require.NoError(t, err)
	ws1, ws2 := n.newWorkloadNS(t), n.newWorkloadNS(t)
	web, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "web", NetNS: namespaces.Path(ws1)})
	require.NoError(t, err)
	_, err = n.d.Attach(ctx, "shop", api.AttachRequest{Name: "db", NetNS: namespaces.Path(ws2), IfName: "eth7"})
	require.NoError(t, err)
	_, err = n.d.Reserve(ctx, "spare")
	require.NoError(t, err)

	ns := n.nsName("shop")
	wg := n.dev("shop").IfName
	subO := subnetsFor(t, s, other)
	peers := []string{peerLine(other.PublicKey, subO.V4, subO.V6)}
	routes := sortedStrings([]string{subO.V4.String() + " dev " + wg, subO.V6.String() + " dev " + wg})
	pid := n.real.PID(n.dev("shop"))
	require.Positive(t, pid)
	before, err := n.d.Networks(ctx)
	require.NoError(t, err)
	var ghostPid int

	step(t, "a restarted daemon adopts what runs", func(t *testing.T) {
		n.restart(t)
		require.NoError(t, n.d.Recover(ctx))
		assert.Equal(t, pid, n.real.PID(n.dev("shop")), "same data plane")
		assert.Zero(t, n.backend.count(overlaytest.OpConfigure), "the device is not configured again")
		assert.Equal(t, peers, n.peersOf(t, "shop"))
		v := view(t, ws1)
		assert.Equal(t, []netip.Prefix{netip.PrefixFrom(web.IPv4, 24), netip.PrefixFrom(web.IPv6, 64)}, v.links["znet0"].addrs)
		after, err := n.d.Networks(ctx)
		require.NoError(t, err)
		assert.Equal(t, before, after)
	})

	step(t, "status explains a missing namespace", func(t *testing.T) {
		n.d.sup.close() // the data plane is to stay dead: no restart
		killAndWait(t, pid)
		st, err := n.d.Status(ctx, "shop")
		require.NoError(t, err)
		require.Len(t, st[0].Problems, 1)
		assert.Contains(t, st[0].Problems[0], "wireguard device:", "a dead data plane is reported")
		n.stop(t)
		deleteAndWait(t, ns)
		// The veths die with the namespace, asynchronously.
		waitLinks(t, ws1, "lo")
		waitLinks(t, ws2, "lo")
		// db's namespace does not come back after the reboot.
		deleteAndWait(t, ws2)
		n.start(t)
		// A first apply that crashed before it was saved: a namespace and
		// a data plane that the state does not know.
		require.NoError(t, namespaces.Create(n.nsName("ghost")))
		ghost := n.dev("ghost")
		ghost.MTU = 1420
		ghostPid, err = n.real.Ensure(ctx, ghost)
		require.NoError(t, err)
		require.Positive(t, ghostPid)

		st, err = n.d.Status(ctx, "shop")
		require.NoError(t, err)
		assert.Equal(t, []string{"namespace " + ns + " is missing; re-apply or restart znetd to rebuild"}, st[0].Problems)
	})

	step(t, "recover rebuilds after a reboot", func(t *testing.T) {
		require.NoError(t, n.d.Recover(ctx))
		require.True(t, namespaces.Exists(ns))
		newPid := n.real.PID(n.dev("shop"))
		require.Positive(t, newPid)
		assert.NotEqual(t, pid, newPid)
		nsID, err := namespaces.ID(ns)
		require.NoError(t, err)
		assert.Equal(t, nsID, netnsOf(t, newPid))

		dev, err := n.real.Show(ctx, n.dev("shop"))
		require.NoError(t, err)
		assert.Equal(t, res.PublicKey, dev.PublicKey.String())
		assert.Equal(t, res.ListenPort, dev.ListenPort)
		assert.Equal(t, peers, n.peersOf(t, "shop"))

		v := view(t, ns)
		assert.Equal(t, routes, v.routeStrings(wg))
		assert.True(t, v.links[bridgeName].up)
		assert.Equal(t, []string{"bridge znet", "inet znet"}, v.tables)
		assert.Contains(t, v.links, hostIfName("web"), "web is re-attached")
		assert.NotContains(t, v.links, hostIfName("db"), "db's namespace is gone")

		wv := view(t, ws1)
		assert.Equal(t, link{name: "znet0", up: true, mtu: 1420,
			addrs: []netip.Prefix{netip.PrefixFrom(web.IPv4, 24), netip.PrefixFrom(web.IPv6, 64)}}, wv.links["znet0"])
		assert.Contains(t, wv.routeStrings("znet0"), "10.20.0.0/16 via 10.20.1.1 dev znet0")
		assert.False(t, wv.hasDefault())
		assert.FileExists(t, resolvConf(ws1))

		assert.False(t, namespaces.Exists(n.nsName("ghost")), "the orphan namespace is removed")
		assert.Zero(t, n.real.PID(n.dev("ghost")), "the orphan's data plane is stopped")
		assert.Equal(t, []int{newPid}, n.dataplanes(t), "only shop's data plane runs")
		assert.False(t, namespaces.Exists(n.nsName("spare")), "a reserved network gets no namespace")

		wls, err := n.d.Workloads(ctx, "shop")
		require.NoError(t, err)
		require.Len(t, wls, 2)
		assert.Equal(t, "db", wls[0].Name)
		assert.Equal(t, api.StateNetNSGone, wls[0].State)
		assert.Equal(t, api.StateAttached, wls[1].State)
		st, err := n.d.Status(ctx, "shop")
		require.NoError(t, err)
		assert.Contains(t, st[0].Problems, "workload db: namespace "+namespaces.Path(ws2)+" is gone; detach it to free 10.20.1.3")
		after, err := n.d.Networks(ctx)
		require.NoError(t, err)
		assert.Equal(t, before, after)
	})

	step(t, "recover again changes nothing", func(t *testing.T) {
		p := n.real.PID(n.dev("shop"))
		configures := n.backend.count(overlaytest.OpConfigure)
		require.NoError(t, n.d.Recover(ctx))
		assert.Equal(t, p, n.real.PID(n.dev("shop")))
		assert.Equal(t, configures, n.backend.count(overlaytest.OpConfigure))
		_, err := os.Stat(namespaces.Path(n.nsName("ghost")))
		assert.ErrorIs(t, err, os.ErrNotExist)
	})
	step(t, "re-applying the same spec repairs a lost namespace", func(t *testing.T) {
		n.d.sup.close() // the data plane is to stay dead: no restart
		killAndWait(t, n.real.PID(n.dev("shop")))
		deleteAndWait(t, ns)
		waitLinks(t, ws1, "lo")
		r, err := n.d.Apply(ctx, s)
		require.NoError(t, err)
		assert.False(t, r.Changed)
		require.True(t, namespaces.Exists(ns))
		assert.Positive(t, n.real.PID(n.dev("shop")))
		assert.Equal(t, peers, n.peersOf(t, "shop"))
		assert.Equal(t, routes, view(t, ns).routeStrings(wg))
		assert.Contains(t, view(t, ns).links, hostIfName("web"), "web is re-attached")
		assert.Contains(t, view(t, ws1).links, "znet0")
	})
}
