package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/namespaces"
)

// TestDataplaneKilled kills a data plane with SIGKILL on one node of a
// 2-node lab: znetd restarts it, so ping across nodes and names answer
// again within a few seconds (before: down until someone re-applied), and
// status counts the restart.
func TestDataplaneKilled(t *testing.T) {
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	deploy(t, l, deployment(t, "shop", "10.80.0.0/16", l.Nodes))
	web1 := attach(t, n1, "shop", "web1")
	web2 := attach(t, n2, "shop", "web2")
	ok, _ := within(5*time.Second, func() bool { a, _ := dig(t, web1.ns, "web2"); return a == web2.ipv4 })
	require.True(t, ok, "web2 resolves on node 1")
	require.True(t, pingOK(web1.ns, web2.ipv4))

	var before []api.NetworkStatus
	znetJSON(t, n1, &before, "status", "shop")
	pid := before[0].PID
	require.Positive(t, pid)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	start := time.Now()

	ok, took := within(5*time.Second, func() bool {
		_, err := inNS(web1.ns, "ping", "-c", "1", "-W", "1", web2.ipv4)
		return err == nil
	})
	require.True(t, ok, "ping across is back")
	t.Logf("ping across back %s after kill -9", took)
	// dig fails outright (no server) until the new resolver listens.
	answers := func(ns, name, want string) bool {
		out, err := inNS(ns, "dig", "+search", "+short", "+time=1", "+tries=1", name)
		return err == nil && strings.TrimSpace(out) == want
	}
	ok, _ = within(5*time.Second, func() bool {
		return answers(web1.ns, "web2", web2.ipv4) && answers(web2.ns, "web1", web1.ipv4)
	})
	require.True(t, ok, "names answer again on both nodes")
	t.Logf("names back %s after kill -9", time.Since(start).Round(time.Millisecond))

	var after []api.NetworkStatus
	znetJSON(t, n1, &after, "status", "shop")
	assert.NotEqual(t, pid, after[0].PID)
	assert.Equal(t, before[0].PublicKey, after[0].PublicKey)
	assert.Equal(t, before[0].ListenPort, after[0].ListenPort)
	assert.Equal(t, 1, after[0].DataplaneRestarts)
	assert.Equal(t, "killed by signal 9 (killed)", after[0].DataplaneLastExit)
	text := znet(t, n1, "status", "shop")
	assert.Contains(t, text, "data-plane restarts")
	assert.Contains(t, text, "1 (last death: killed by signal 9 (killed),")
}

// TestStatusStoppedDataplaneE2E stops a data plane (SIGSTOP): `znet status`
// of all networks answers within 2 s and names it (before: 26-84 s).
func TestStatusStoppedDataplaneE2E(t *testing.T) {
	l := newLab(t, 1)
	node := l.Nodes[0]
	for _, nw := range []string{"red", "blue"} {
		_, errOut, err := znetRun(node, oneNodeSpec(nw, node.ID, 1), "network", "apply", "-f", "-")
		require.NoError(t, err, errOut)
	}
	pids := dataplanePIDs(t, node)
	require.NoError(t, syscall.Kill(pids["red"], syscall.SIGSTOP))
	defer func() { _ = syscall.Kill(pids["red"], syscall.SIGCONT) }()
	// SIGSTOP takes effect when the process is next scheduled.
	ok, _ := within(5*time.Second, func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pids["red"]) + "/stat")
		i := bytes.LastIndexByte(b, ')')
		return err == nil && i > 0 && i+2 < len(b) && b[i+2] == 'T'
	})
	require.True(t, ok, "the data plane is stopped")

	start := time.Now()
	out, errOut, err := znetRun(node, "", "status")
	took := time.Since(start)
	require.NoError(t, err, errOut)
	assert.Less(t, took, 2*time.Second)
	assert.Contains(t, out, "data plane not responding (pid "+strconv.Itoa(pids["red"])+")")
	t.Logf("status answered in %s", took.Round(time.Millisecond))

	require.NoError(t, syscall.Kill(pids["red"], syscall.SIGCONT))
	assert.NotContains(t, znet(t, node, "status"), "not responding")
	assert.Equal(t, pids, dataplanePIDs(t, node), "a stopped data plane was not replaced")
}

// TestSecondZnetdSameNodeID starts a second znetd with a running node's id
// and another state dir: it is refused, naming the node id and the
// holder, and the node's networks keep working (before: it deleted them
// as orphans in half a second).
func TestSecondZnetdSameNodeID(t *testing.T) {
	l := newLab(t, 1)
	node := l.Nodes[0]
	_, errOut, err := znetRun(node, oneNodeSpec("red", node.ID, 1), "network", "apply", "-f", "-")
	require.NoError(t, err, errOut)
	a, b := attach(t, node, "red", "a"), attach(t, node, "red", "b")
	require.True(t, pingOK(a.ns, b.ipv4))

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "znetd"), "--node-id", node.ID,
		"--state-dir", filepath.Join(dir, "state"), "--socket", filepath.Join(dir, "znetd.sock"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	ns, err := namespaces.Open(node.NetNS)
	require.NoError(t, err)
	defer func() { _ = ns.Close() }()
	require.NoError(t, namespaces.Start(cmd, ns))
	err = cmd.Wait()
	require.Error(t, err, "the second znetd must not run")
	assert.Contains(t, stderr.String(), "node id "+node.ID+" is already run by znetd pid "+strconv.Itoa(node.PID())+
		" with state dir "+node.StateDir)
	assert.NoDirExists(t, filepath.Join(dir, "state"), "it touched nothing, not even its state dir")

	assert.True(t, namespaces.Exists(namespaces.Name(node.ID, "red")))
	assert.True(t, pingOK(a.ns, b.ipv4), "the node's network still works")
}
