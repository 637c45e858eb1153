package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/api"
	"github.com/znet/znet/dataplane"
	"github.com/znet/znet/dnsresolver"
	"github.com/znet/znet/dnsresolver/dnsresolvertest"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/overlay"
	"github.com/znet/znet/overlay/overlaytest"
	"github.com/znet/znet/store"
)

// fakeResolvers is a ResolverHost that runs nothing: it records calls as
// "Op ifname" and hands out pids from 5000.
type fakeResolvers struct {
	mu    sync.Mutex
	calls []string
	pids  map[string]int
	next  int
}

func (f *fakeResolvers) Ensure(_ context.Context, ifname, _ string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "Ensure "+ifname)
	if f.pids == nil {
		f.pids, f.next = map[string]int{}, 5000
	}
	if f.pids[ifname] == 0 {
		f.pids[ifname] = f.next
		f.next++
	}
	return f.pids[ifname], nil
}

func (f *fakeResolvers) PID(ifname string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pids[ifname]
}

func (f *fakeResolvers) Wait(ctx context.Context, _ string, _ int) (string, error) {
	<-ctx.Done() // never dies
	return "", ctx.Err()
}

func (f *fakeResolvers) Delete(_ context.Context, ifname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "Delete "+ifname)
	delete(f.pids, ifname)
	return nil
}

func (f *fakeResolvers) List(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.pids)), nil
}

func (f *fakeResolvers) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// TestFakeDNSPushes checks, without root, that the daemon pushes the
// resolver of a network its records on apply and on a detach (attach runs
// the same push; it needs root), and that status shows what the resolver
// answers.
func TestFakeDNSPushes(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	u.dns = &dnsresolvertest.Client{}
	u.d = u.newDaemon(t)
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	cfg, ok := u.dns.Last("shop")
	require.True(t, ok, "apply pushes")
	assert.Equal(t, "shop", cfg.Network)
	assert.Equal(t, u.id, cfg.NodeID)
	assert.Equal(t, mustAddr("10.20.1.1"), cfg.Gateway4)
	require.Len(t, cfg.Members, 1)
	assert.Equal(t, "node2", cfg.Members[0].ID)
	assert.Empty(t, cfg.Local)

	f.seedWorkload(t, "web", mustAddr("10.20.1.2"))
	f.seedWorkload(t, "db", mustAddr("10.20.1.3"))
	f.apply(t, 2)
	cfg, _ = u.dns.Last("shop")
	require.Len(t, cfg.Local, 2, "the workloads' names are pushed")
	require.NoError(t, u.d.Detach(context.Background(), "shop", "web"))
	cfg, _ = u.dns.Last("shop")
	require.Len(t, cfg.Local, 1, "a detach pushes the names left")
	assert.Equal(t, "db", cfg.Local[0].Name)

	u.dns.SetStats("shop", dnsresolver.Stats{Serial: 7, Records: 1, Queries: map[string]uint64{"NOERROR": 42},
		Members: map[string]dnsresolver.MemberStats{"node2": {Serial: 3, Records: 2}}})
	// Status asks it only of a namespace that exists in the kernel: ask as
	// status does.
	n, _, err := u.d.loadNetwork("shop")
	require.NoError(t, err)
	st, problem := u.d.dnsStatus(context.Background(), n)
	assert.Empty(t, problem)
	require.NotNil(t, st)
	assert.Equal(t, uint32(7), st.Serial)
	assert.Equal(t, uint64(42), st.Queries["NOERROR"])
	require.Len(t, st.Members, 1)
	assert.Equal(t, "node2", st.Members[0].ID)

	u.dns.Fail(errors.New("no answer"))
	st, problem = u.d.dnsStatus(context.Background(), n)
	assert.Nil(t, st)
	assert.Equal(t, "resolver: no answer", problem)
}

// newKernelUnit returns a unit on the fake kernel backend, whose networks
// get resolver-only processes from the fake Resolvers it returns.
func newKernelUnit(t *testing.T) (*unit, *fakeResolvers) {
	t.Helper()
	u := newUnit(t, newNodeID(t))
	u.backend = overlaytest.New("kernel")
	res := &fakeResolvers{}
	u.dns, u.resolvers = &dnsresolvertest.Client{}, res
	u.d = u.newDaemon(t)
	return u, res
}

// TestFakeResolverOnly checks, without root, that a network on a backend
// whose devices run no process (kernel) gets a resolver-only process on
// apply, is adopted again after a restart, and loses it with the network
// or when the node moves to the userspace backend; a userspace network gets
// none (its data plane hosts the resolver).
func TestFakeResolverOnly(t *testing.T) {
	u, res := newKernelUnit(t)
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	ifname := f.ifname()
	assert.Equal(t, []string{"Ensure " + ifname}, res.Calls())
	_, pushed := u.dns.Last("shop")
	assert.True(t, pushed, "records pushed to the resolver-only process")
	pid := res.PID(ifname)

	u.d.Close()
	u.d = u.newDaemon(t)
	require.NoError(t, u.d.Recover(context.Background()))
	assert.Equal(t, pid, res.PID(ifname), "adopted, not replaced")

	require.NoError(t, u.d.DeleteNetwork(context.Background(), "shop", true))
	assert.Equal(t, "Delete "+ifname, res.Calls()[len(res.Calls())-1])
	assert.Zero(t, res.PID(ifname))

	t.Run("a switch to userspace removes it", func(t *testing.T) {
		u, res := newKernelUnit(t)
		f := newFakeNet(t, u, "shop")
		f.apply(t, 1)
		require.NotZero(t, res.PID(f.ifname()))
		u.d.Close()
		u.backend = overlaytest.New("userspace")
		u.d = u.newDaemon(t)
		require.NoError(t, u.d.Recover(context.Background()))
		assert.Equal(t, []string{"Ensure " + f.ifname(), "Delete " + f.ifname()}, res.Calls())
		assert.Zero(t, res.PID(f.ifname()))
	})

	// The state forgot the network and its namespace is gone (a delete
	// that crashed after removing the namespace, a state restored from
	// an older copy): nothing else would ever stop its resolver.
	t.Run("one of a network the state does not know is swept at start", func(t *testing.T) {
		u, res := newKernelUnit(t)
		keep, gone := newFakeNet(t, u, "keep"), newFakeNet(t, u, "gone")
		keep.apply(t, 1)
		gone.apply(t, 1)
		u.d.Close()
		require.NoError(t, u.store.Update(func(tx *store.Tx) error { return tx.DeleteNetwork("gone") }))
		u.host.Remove(u.d.nsName("gone"))

		u.d = u.newDaemon(t)
		require.NoError(t, u.d.Recover(context.Background()))
		assert.Zero(t, res.PID(gone.ifname()), "swept")
		assert.NotZero(t, res.PID(keep.ifname()), "a known network keeps its resolver")
		assert.Equal(t, "Delete "+gone.ifname(), res.Calls()[len(res.Calls())-1])
	})

	t.Run("userspace networks have none", func(t *testing.T) {
		u := newUnit(t, newNodeID(t))
		res := &fakeResolvers{}
		u.dns, u.resolvers = &dnsresolvertest.Client{}, res
		u.d = u.newDaemon(t)
		newFakeNet(t, u, "shop").apply(t, 1)
		assert.Empty(t, res.Calls())
		_, pushed := u.dns.Last("shop")
		assert.True(t, pushed, "pushed to the data plane's resolver")
	})
}

// dummyKernel is the fake kernel backend with a veth standing for
// each WireGuard device in its namespace, so that the daemon can address
// and route it as it does a kernel device on a machine without WireGuard.
type dummyKernel struct{ *overlaytest.Backend }

func newDummyKernel() dummyKernel { return dummyKernel{overlaytest.New("kernel")} }

func (b dummyKernel) Ensure(ctx context.Context, d overlay.Device) (int, error) {
	pid, err := b.Backend.Ensure(ctx, d)
	if err != nil {
		return 0, err
	}
	ns, err := namespaces.Open(d.NetNS)
	if err != nil {
		return 0, err
	}
	defer func() { _ = ns.Close() }()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	if _, err := h.LinkByName(d.IfName); err == nil {
		return pid, nil
	}
	mtu := d.MTU
	if mtu == 0 {
		mtu = overlay.DefaultMTU
	}
	// A veth (this kernel has no dummy links either), whose other end stays
	// in the namespace too and goes with it.
	return pid, h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: d.IfName, MTU: mtu}, PeerName: d.IfName + "p"})
}

func (b dummyKernel) Close() error { return nil }

// TestResolverOnlyProcess checks (issue 12 item 3) that a network on a
// backend without processes (the fake kernel backend: this kernel has no
// WireGuard) gets a resolver-only process in its namespace that answers the
// workloads' names at the gateway, holds no privilege, is adopted by a
// restarted znetd, is restarted when it dies, and is gone with the network.
func TestResolverOnlyProcess(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newTestNodeOf(t, true)
	ctx := testCtx(t)
	n.use("shop")
	_, err := n.d.Reserve(ctx, "shop")
	require.NoError(t, err)
	s := oneNodeSpec("shop", n.id, 1)
	_, err = n.d.Apply(ctx, s)
	require.NoError(t, err)
	ws := n.newWorkloadNS(t)
	web, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "web", NetNS: namespaces.Path(ws)})
	require.NoError(t, err)
	ifname := n.dev("shop").IfName
	resolves := func(t *testing.T) {
		t.Helper()
		var got []string
		assert.Eventually(t, func() bool {
			got, err = lookupA(namespaces.Path(ws), web.Gateway.String(), "web.shop.internal")
			return err == nil && len(got) == 1 && got[0] == web.IPv4.String()
		}, 5*time.Second, 50*time.Millisecond, "web: %v %v", got, err)
	}
	pid := n.resolvers.PID(ifname)
	require.Positive(t, pid)
	sock := dataplane.ResolverSocket(filepath.Join(n.dir, "run"), ifname)

	step(t, "the workload's name answers at the gateway", func(t *testing.T) {
		resolves(t)
		underlay, err := namespaces.IdentityOf(n.underlay)
		require.NoError(t, err)
		requireUnprivileged(t, pid, ifname, underlay.Ino)
		ino, err := dataplane.NetnsIno(pid)
		require.NoError(t, err)
		want, err := dataplane.PathIno(n.dev("shop").NetNS)
		require.NoError(t, err)
		assert.Equal(t, want, ino, "runs in the network's namespace")
		st, err := n.d.Status(ctx, "shop")
		require.NoError(t, err)
		require.NotNil(t, st[0].DNS)
		assert.Equal(t, 1, st[0].DNS.Records)
	})

	step(t, "a restarted znetd adopts it", func(t *testing.T) {
		n.restart(t)
		require.NoError(t, n.d.Recover(ctx))
		assert.Equal(t, pid, n.resolvers.PID(ifname), "same process")
		resolves(t)
	})

	step(t, "one that dies is restarted", func(t *testing.T) {
		require.NoError(t, unix.Kill(pid, unix.SIGKILL))
		require.Eventually(t, func() bool {
			p := n.resolvers.PID(ifname)
			return p != 0 && p != pid
		}, 10*time.Second, 20*time.Millisecond)
		pid = n.resolvers.PID(ifname)
		resolves(t)
	})

	// Its namespace's name gone too, nothing but the start's sweep of
	// resolvers would ever stop it (it keeps the namespace alive).
	step(t, "one of a network the state forgot is stopped at start", func(t *testing.T) {
		n.use("gone")
		_, err := n.d.Reserve(ctx, "gone")
		require.NoError(t, err)
		_, err = n.d.Apply(ctx, oneNodeSpec("gone", n.id, 1))
		require.NoError(t, err)
		gone := n.resolvers.PID(n.dev("gone").IfName)
		require.Positive(t, gone)
		n.restart(t)
		require.NoError(t, n.store.Update(func(tx *store.Tx) error { return tx.DeleteNetwork("gone") }))
		require.NoError(t, namespaces.Delete(n.nsName("gone")))
		require.NoError(t, n.d.Recover(ctx))
		assert.False(t, dataplane.Alive(gone), "resolver %d of the forgotten network", gone)
		assert.Equal(t, pid, n.resolvers.PID(ifname), "the known network's is adopted")
	})

	step(t, "deleting the network leaves nothing", func(t *testing.T) {
		require.NoError(t, n.d.DeleteNetwork(ctx, "shop", true))
		assert.False(t, dataplane.Alive(pid), "resolver %d gone", pid)
		assert.NoFileExists(t, sock)
		entries, err := os.ReadDir(filepath.Join(n.dir, "run"))
		require.NoError(t, err)
		assert.Empty(t, entries, "run directory")
	})
}

// dyingResolvers is a fakeResolvers whose first resolver dies at once
// and whose later ones cannot be started.
type dyingResolvers struct {
	fakeResolvers
	mu     sync.Mutex
	waits  int
	starts int
}

func (f *dyingResolvers) Ensure(ctx context.Context, ifname, netnsPath string) (int, error) {
	f.mu.Lock()
	f.starts++
	first := f.starts == 1
	f.mu.Unlock()
	if !first {
		return 0, errors.New("no resolver today")
	}
	return f.fakeResolvers.Ensure(ctx, ifname, netnsPath)
}

func (f *dyingResolvers) Wait(ctx context.Context, ifname string, pid int) (string, error) {
	f.mu.Lock()
	f.waits++
	first := f.waits == 1
	f.mu.Unlock()
	if first {
		return "killed by signal 9 (killed)", nil
	}
	return f.fakeResolvers.Wait(ctx, ifname, pid)
}

// TestFakeResolverDeathInStatus: a resolver-only process that died and
// cannot be restarted shows in the network's status problems, as a data
// plane does; the supervisor knowing it is not enough for an operator.
// (The fake host makes no namespace, so status itself stops at that:
// this reads the problems its supervisors give.)
func TestFakeResolverDeathInStatus(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	u.backend = overlaytest.New("kernel")
	u.dns, u.resolvers = &dnsresolvertest.Client{}, &dyingResolvers{}
	u.d = u.newDaemon(t)
	newFakeNet(t, u, "shop").apply(t, 1)
	var problems []string
	assert.Eventually(t, func() bool {
		problems = u.d.healthStatus(&api.NetworkStatus{Name: "shop"})
		return slices.Contains(problems, "restarting the resolver failed: no resolver today")
	}, 5*time.Second, 10*time.Millisecond, "problems: %q", problems)
}

// TestFakeResolverDeathLogged: the resolver supervisor's log says a
// resolver died and could not be restarted, not a data plane (on the
// kernel backend, which runs resolver-only processes, there is none).
func TestFakeResolverDeathLogged(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	u.backend = overlaytest.New("kernel")
	u.dns, u.resolvers = &dnsresolvertest.Client{}, &dyingResolvers{}
	u.d = u.newDaemon(t)
	var mu sync.Mutex
	var logged strings.Builder
	u.d.resolverSup.log = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))
	newFakeNet(t, u, "shop").apply(t, 1)
	text := func() string {
		mu.Lock()
		defer mu.Unlock()
		return logged.String()
	}
	assert.Eventually(t, func() bool { return strings.Contains(text(), `msg="restarting the resolver"`) },
		5*time.Second, 10*time.Millisecond, "log: %s", text())
	assert.Contains(t, text(), `msg="resolver died"`)
	assert.NotContains(t, text(), "data plane")
}

// lockedWriter is an io.Writer that writes to w under mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestFakeDNSHoldsOnlyNewMembers checks that the resolver is told which
// members an apply adds (Config.Hold, whose first sync it may hold back)
// and no others: a first apply holds all of them, an apply adding a member
// that one only, a re-apply none, and a data plane restarted by the
// supervisor or rebuilt at recover none (its members were all there, and
// their names must answer on this node at once).
func TestFakeDNSHoldsOnlyNewMembers(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	u.dns = &dnsresolvertest.Client{}
	u.d = u.newDaemon(t)
	f := newFakeNet(t, u, "shop")
	f.addMember(t, 3)
	seen := 0
	hold := func() []string { // of the push since the last call
		t.Helper()
		pushes := u.dns.Pushes()
		require.Greater(t, len(pushes), seen, "a new push")
		seen = len(pushes)
		return pushes[seen-1].Config.Hold
	}
	f.apply(t, 1)
	assert.Equal(t, []string{"node2", "node3"}, hold(), "a first apply")

	f.addMember(t, 4)
	f.apply(t, 2)
	assert.Equal(t, []string{"node4"}, hold(), "an apply that adds a member")
	f.apply(t, 3)
	assert.Empty(t, hold(), "a re-apply")

	u.backend.Crash(f.ifname())
	_, err := u.d.restartDataplane(context.Background(), "shop")
	require.NoError(t, err)
	assert.Empty(t, hold(), "a restarted data plane")

	u.d.Close()
	u.host.Remove(f.ns())
	u.backend.Crash(f.ifname())
	u.d = u.newDaemon(t)
	require.NoError(t, u.d.Recover(context.Background()))
	assert.Empty(t, hold(), "a data plane rebuilt at recover")
}
