package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// applyWithWorkload applies network name (this node and one other member)
// with one workload attached, and returns the spec.
func applyWithWorkload(t *testing.T, n *testNode, name, subnet string) *spec.Spec {
	t.Helper()
	ctx := testCtx(t)
	n.use(name)
	res, err := n.d.Reserve(ctx, name)
	require.NoError(t, err)
	self := spec.Node{ID: n.id, Subnet: mustPrefix(subnet), Endpoint: fmt.Sprintf("198.18.0.1:%d", res.ListenPort)}
	s := specOf(name, 1, self, member(t, "node2", "10.20.200.0/24"))
	_, err = n.d.Apply(ctx, s)
	require.NoError(t, err)
	_, err = n.d.Attach(ctx, name, api.AttachRequest{Name: "web", NetNS: namespaces.Path(n.newWorkloadNS(t))})
	require.NoError(t, err)
	return s
}

// TestDataplaneRestart kills a network's data plane with SIGKILL and checks
// that znetd brings it back within 2 s with the same key, port, peers and
// DNS records, and says so in status; a network deleted on purpose is not
// brought back.
func TestDataplaneRestart(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	applyWithWorkload(t, n, "shop", "10.20.1.0/24")
	before, err := n.d.Status(ctx, "shop")
	require.NoError(t, err)
	require.NotNil(t, before[0].DNS)
	peers := n.peersOf(t, "shop")
	pid := before[0].PID
	require.Positive(t, pid)

	killAndWait(t, pid)
	start := time.Now()
	var after api.NetworkStatus
	require.Eventually(t, func() bool {
		st, err := n.d.Status(ctx, "shop")
		// Restarted counts once the restart is complete, DNS records too.
		if err != nil || st[0].PID == 0 || st[0].PID == pid || st[0].DNS == nil || st[0].DataplaneRestarts == 0 {
			return false
		}
		after = st[0]
		return true
	}, 2*time.Second, 20*time.Millisecond, "the data plane is back within 2 s")
	t.Logf("data plane back after %s", time.Since(start).Round(time.Millisecond))

	dev, err := n.real.Show(ctx, n.dev("shop"))
	require.NoError(t, err)
	assert.Equal(t, before[0].PublicKey, dev.PublicKey.String(), "same key")
	assert.Equal(t, before[0].ListenPort, dev.ListenPort, "same port")
	assert.Equal(t, peers, n.peersOf(t, "shop"), "same peers")
	assert.Equal(t, before[0].DNS.Records, after.DNS.Records, "same DNS records")
	assert.Equal(t, 1, after.DataplaneRestarts)
	assert.Equal(t, "killed by signal 9 (killed)", after.DataplaneLastExit)
	assert.False(t, after.DataplaneLastExitAt.IsZero())

	require.NoError(t, n.d.DeleteNetwork(ctx, "shop", true))
	time.Sleep(300 * time.Millisecond)
	assert.Empty(t, n.dataplanes(t), "a data plane stopped by a delete is not restarted")
}

// TestStatusStoppedDataplane stops one network's data plane (SIGSTOP) and
// checks that status of all networks still answers within 2 s, naming it.
func TestStatusStoppedDataplane(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	applyWithWorkload(t, n, "shop", "10.20.1.0/24")
	applyWithWorkload(t, n, "blog", "10.20.2.0/24")
	pid := n.real.PID(n.dev("shop"))
	require.Positive(t, pid)
	require.NoError(t, unix.Kill(pid, unix.SIGSTOP))
	defer func() { _ = unix.Kill(pid, unix.SIGCONT) }()
	require.Eventually(t, func() bool { return stopped(pid) }, 5*time.Second, time.Millisecond)

	for range 2 { // the second time too: nothing left hanging from the first
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		start := time.Now()
		st, err := n.d.Status(sctx, "")
		took := time.Since(start)
		cancel()
		require.NoError(t, err)
		assert.Less(t, took, 2*time.Second, "status of all networks answers")
		byName := map[string]api.NetworkStatus{}
		for _, s := range st {
			byName[s.Name] = s
		}
		require.Len(t, byName, 2)
		assert.Contains(t, fmt.Sprint(byName["shop"].Problems), "data plane not responding")
		assert.NotContains(t, fmt.Sprint(byName["blog"].Problems), "not responding")
		assert.NotNil(t, byName["blog"].DNS, "the other network answers in full")
	}

	require.NoError(t, unix.Kill(pid, unix.SIGCONT))
	require.Eventually(t, func() bool {
		st, err := n.d.Status(ctx, "shop")
		return err == nil && st[0].DNS != nil
	}, 5*time.Second, 50*time.Millisecond, "answers again once continued")
	assert.Equal(t, pid, n.real.PID(n.dev("shop")), "a stopped data plane is not restarted")
}

// TestOrphanSweepOnlyOwn checks that recovery removes the namespaces of
// this node id that its own state dir made and the state forgot, and
// leaves those another state dir made (a second znetd started with the
// same node id and a mistyped --state-dir used to delete them all).
func TestOrphanSweepOnlyOwn(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.d.markDir = filepath.Join(n.dir, "netns")
	applyWithWorkload(t, n, "shop", "10.20.1.0/24")
	assert.FileExists(t, filepath.Join(n.d.markDir, n.nsName("shop")), "a namespace made is marked")

	foreign, ghost := n.nsName("foreign"), n.nsName("ghost")
	require.NoError(t, namespaces.Create(foreign))
	defer func() { _ = namespaces.Delete(foreign) }()
	require.NoError(t, n.d.markOwned(ghost)) // a first apply that crashed after its mark
	require.NoError(t, namespaces.Create(ghost))

	require.NoError(t, n.d.Recover(ctx))
	assert.True(t, namespaces.Exists(foreign), "another state dir's namespace is left alone")
	assert.False(t, namespaces.Exists(ghost), "our own orphan is removed")
	assert.NoFileExists(t, filepath.Join(n.d.markDir, ghost), "with its mark")
	assert.True(t, namespaces.Exists(n.nsName("shop")))

	require.NoError(t, n.d.DeleteNetwork(ctx, "shop", true))
	assert.NoFileExists(t, filepath.Join(n.d.markDir, n.nsName("shop")), "a deleted namespace's mark goes")
	deleteAndWait(t, foreign)
}

// stopped reports whether process pid is stopped (state T): SIGSTOP takes
// effect when the process is next scheduled, not when kill returns.
func stopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'T'
}

// TestDataplaneRestartRetriedAfterHalfDone kills a data plane and makes
// the restart fail after the new data plane started (configuring it is
// refused once): the supervisor restarts again after its backoff, so the
// network gets its key and peers back instead of keeping an empty device.
func TestDataplaneRestartRetriedAfterHalfDone(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	applyWithWorkload(t, n, "shop", "10.20.1.0/24")
	before, err := n.d.Status(ctx, "shop")
	require.NoError(t, err)
	peers := n.peersOf(t, "shop")
	pid := before[0].PID
	require.Positive(t, pid)

	n.backend.failNext(overlaytest.OpConfigure, errInjected, false)
	killAndWait(t, pid)
	requireRestarts(t, n, "shop", 1)
	dev, err := n.real.Show(ctx, n.dev("shop"))
	require.NoError(t, err)
	assert.Equal(t, before[0].PublicKey, dev.PublicKey.String(), "the key is back")
	assert.Equal(t, peers, n.peersOf(t, "shop"), "the peers are back")
	h, _ := n.d.DataplaneHealth("shop")
	assert.Empty(t, h.RestartError)
}

// TestFailedDeleteKeepsSupervising fails a delete before it stopped the
// data plane: the network stays, and so does the watch on its data plane,
// which is restarted when it dies.
func TestFailedDeleteKeepsSupervising(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	applyWithWorkload(t, n, "shop", "10.20.1.0/24")
	pid := n.real.PID(n.dev("shop"))
	require.Positive(t, pid)

	n.backend.failNext(overlaytest.OpDelete, errInjected, false)
	require.ErrorIs(t, n.d.DeleteNetwork(ctx, "shop", true), errInjected)
	_, ok := n.d.DataplaneHealth("shop")
	require.True(t, ok, "still watched")
	killAndWait(t, pid)
	requireRestarts(t, n, "shop", 1)
}

// requireRestarts waits up to 5 s until network's data plane was restarted
// want times.
func requireRestarts(t *testing.T, n *testNode, network string, want int) {
	t.Helper()
	require.Eventually(t, func() bool {
		h, _ := n.d.DataplaneHealth(network)
		return h.Restarts == want
	}, 5*time.Second, 20*time.Millisecond, "%s restarted %d times", network, want)
}
