package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/dataplane"
	"github.com/znet/znet/dnsresolver/dnsclient"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/overlay"
	"github.com/znet/znet/overlay/overlaytest"
	"github.com/znet/znet/store"
)

// faultyBackend wraps a real backend and fails the calls it is told to,
// either instead of the call or after the call went through (a change
// that half happened).
type faultyBackend struct {
	overlay.Backend

	mu     sync.Mutex
	faults map[string][]fault // op -> faults for the next calls
	calls  map[string]int     // op -> calls so far
}

type fault struct {
	err   error
	after bool
}

func (f *faultyBackend) failNext(op string, err error, after bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[op] = append(f.faults[op], fault{err, after})
}

// count returns how many calls of op were made.
func (f *faultyBackend) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// call records a call of op and runs it, failing it if told to.
func (f *faultyBackend) call(op string, fn func() error) error {
	f.mu.Lock()
	f.calls[op]++
	var (
		ft  fault
		hit bool
	)
	if q := f.faults[op]; len(q) > 0 {
		ft, hit, f.faults[op] = q[0], true, q[1:]
	}
	f.mu.Unlock()
	if !hit {
		return fn()
	}
	if ft.after {
		if err := fn(); err != nil {
			return err
		}
	}
	return ft.err
}

func (f *faultyBackend) Ensure(ctx context.Context, d overlay.Device) (int, error) {
	var pid int
	err := f.call(overlaytest.OpEnsure, func() error {
		var err error
		pid, err = f.Backend.Ensure(ctx, d)
		return err
	})
	return pid, err
}

func (f *faultyBackend) Delete(ctx context.Context, d overlay.Device) error {
	return f.call(overlaytest.OpDelete, func() error { return f.Backend.Delete(ctx, d) })
}

func (f *faultyBackend) Configure(ctx context.Context, d overlay.Device, cfg wgtypes.Config) error {
	return f.call(overlaytest.OpConfigure, func() error { return f.Backend.Configure(ctx, d, cfg) })
}

func (f *faultyBackend) Show(ctx context.Context, d overlay.Device) (*wgtypes.Device, error) {
	var dev *wgtypes.Device
	err := f.call(overlaytest.OpShow, func() error {
		var err error
		dev, err = f.Backend.Show(ctx, d)
		return err
	})
	return dev, err
}

// errInjected is what faultyBackend's failures return.
var errInjected = errors.New("injected failure")

// testNode is one znetd's daemon with the real userspace backend, whose
// data planes are re-executions of the test binary. Its UDP sockets live in
// an underlay namespace of its own; nothing touches the machine's
// namespace.
type testNode struct {
	id       string
	dir      string
	underlay netns.NsHandle
	store    *store.Store
	real     overlay.Backend
	backend  *faultyBackend
	d        *Daemon
	// kernel makes start use a fake kernel backend (dummyKernel) instead
	// of the userspace one; resolvers host the resolvers then.
	kernel    bool
	resolvers *dataplane.Resolvers

	mu        sync.Mutex
	networks  map[string]bool // every network name used, for the leak checks
	workloads []string        // workload namespaces made by newWorkloadNS
}

// newTestNode starts a node; t.Cleanup deletes every network through the
// daemon, sweeps what is left and fails t if anything was left.
func newTestNode(t *testing.T) *testNode {
	t.Helper()
	return newTestNodeOf(t, false)
}

// newTestNodeOf is newTestNode, with the fake kernel backend if kernel.
func newTestNodeOf(t *testing.T, kernel bool) *testNode {
	t.Helper()
	n := &testNode{id: newNodeID(t), dir: t.TempDir(), networks: map[string]bool{}, kernel: kernel}
	ul := "zt-dm-" + testutil.RandomHex(t, 4) + "-ul"
	require.NoError(t, namespaces.Create(ul))
	h, err := namespaces.Open(ul)
	if err != nil {
		_ = namespaces.Delete(ul)
		require.NoError(t, err)
	}
	n.underlay = h
	t.Cleanup(func() { n.cleanup(t, ul) })
	n.start(t)
	return n
}

// start opens the state and a backend and makes the daemon (without
// Recover), as znetd does at start.
func (n *testNode) start(t *testing.T) {
	t.Helper()
	st, err := store.Open(n.dir)
	require.NoError(t, err)
	n.store = st
	runDir := filepath.Join(n.dir, "run")
	var b overlay.Backend
	if n.kernel {
		b = newDummyKernel()
	} else {
		b, err = overlay.New("userspace", overlay.Options{
			Underlay: n.underlay,
			RunDir:   runDir,
			Exe:      os.Args[0],
			Env:      []string{dataplaneEnv + "=1"},
		})
		require.NoError(t, err)
	}
	n.real = b
	n.resolvers, err = dataplane.NewResolvers(dataplane.ResolverOptions{
		Underlay: n.underlay, RunDir: runDir, Exe: os.Args[0], Env: []string{dataplaneEnv + "=1"},
	})
	require.NoError(t, err)
	n.backend = &faultyBackend{Backend: b, faults: map[string][]fault{}, calls: map[string]int{}}
	n.d, err = New(Config{
		NodeID: n.id, Store: st, Backend: n.backend,
		PortMin: 40000, PortMax: 40099,
		PortFree: func(int) bool { return true }, // the underlay is ours alone
		Underlay: n.underlay,
		DNS: &dnsclient.Sockets{Path: func(network string) string {
			return dataplane.ResolverSocket(runDir, overlay.IfName(n.id, network))
		}},
		Resolvers: n.resolvers,
	})
	require.NoError(t, err)
}

// stop closes the backend and the state, leaving data planes and
// namespaces running, as a killed znetd does.
func (n *testNode) stop(t *testing.T) {
	t.Helper()
	if n.d != nil {
		n.d.Close()
	}
	if n.real != nil {
		assert.NoError(t, n.real.(interface{ Close() error }).Close())
		n.real = nil
	}
	if n.resolvers != nil {
		assert.NoError(t, n.resolvers.Close())
		n.resolvers = nil
	}
	if n.store != nil {
		assert.NoError(t, n.store.Close())
		n.store = nil
	}
}

// restart is stop and start: a znetd restarted on a machine that kept
// running.
func (n *testNode) restart(t *testing.T) {
	t.Helper()
	n.stop(t)
	n.start(t)
}

// use notes a network name for the leak checks.
func (n *testNode) use(network string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.networks[network] = true
}

func (n *testNode) nsName(network string) string { return namespaces.Name(n.id, network) }

func (n *testNode) dev(network string) overlay.Device {
	return overlay.Device{IfName: overlay.IfName(n.id, network), NetNS: namespaces.Path(n.nsName(network))}
}

// newWorkloadNS creates a workload namespace zt-dm-<random>; the node's
// cleanup deletes it.
func (n *testNode) newWorkloadNS(t *testing.T) string {
	t.Helper()
	name := "zt-dm-" + testutil.RandomHex(t, 4)
	n.mu.Lock()
	n.workloads = append(n.workloads, name)
	n.mu.Unlock()
	require.NoError(t, namespaces.Create(name))
	return name
}

// cleanup deletes every network through the daemon, then removes and
// reports whatever is left: namespaces of the node, data planes, sockets,
// resolv.conf files, the workload and underlay namespaces.
func (n *testNode) cleanup(t *testing.T, underlay string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n.store == nil && n.underlay.IsOpen() {
		n.start(t)
	}
	if n.d != nil && n.store != nil {
		list, err := n.d.Networks(ctx)
		assert.NoError(t, err)
		for _, s := range list {
			n.use(s.Name)
			assert.NoError(t, n.d.DeleteNetwork(ctx, s.Name, true), "deleting %s", s.Name)
		}
	}
	left, err := namespaces.List(namespaces.NodePrefix(n.id))
	assert.NoError(t, err)
	assert.Empty(t, left, "namespaces of node %s left behind", n.id)
	for _, name := range left {
		assert.NoError(t, namespaces.Delete(name))
	}
	for _, pid := range n.dataplanes(t) {
		t.Errorf("data plane %d left running", pid)
		assert.NoError(t, unix.Kill(pid, unix.SIGKILL))
	}
	n.stop(t)
	for network := range n.networks {
		sock := filepath.Join("/var/run/wireguard", overlay.IfName(n.id, network)+".sock")
		if _, err := os.Stat(sock); err == nil {
			t.Errorf("socket %s left behind", sock)
			_ = os.Remove(sock)
		}
	}
	for _, name := range n.workloads {
		assert.NoError(t, namespaces.Delete(name))
		dir := filepath.Join("/etc/netns", name)
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s left behind", dir)
			_ = os.RemoveAll(dir)
		}
	}
	id, idErr := namespaces.Identify(underlay)
	_ = n.underlay.Close()
	assert.NoError(t, namespaces.Delete(underlay))
	if idErr == nil {
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, namespaces.WaitGone(wctx, id), "underlay namespace still held")
	}
}

// dataplanes returns the pids of the data planes of this node's networks
// (processes of the test binary run as "dataplane --ifname <one of ours>").
func (n *testNode) dataplanes(t *testing.T) []int {
	t.Helper()
	ours := map[string]bool{}
	n.mu.Lock()
	for network := range n.networks {
		ours[overlay.IfName(n.id, network)] = true
	}
	n.mu.Unlock()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) < 4 || args[0] != os.Args[0] || (args[1] != "dataplane" && args[1] != "resolver") {
			continue
		}
		for i, a := range args[:len(args)-1] {
			if a == "--ifname" && ours[args[i+1]] {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}
