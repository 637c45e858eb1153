package daemon

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/spec"
)

// startInNewNetNS starts a sleeping process in a network namespace of its
// own and reaps it in t.Cleanup.
func startInNewNetNS(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { stopProcess(cmd) })
	return cmd
}

// stopProcess kills and reaps cmd; it may be gone already.
func stopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_, _ = cmd.Process.Wait()
}

// startWithPid starts a sleeping process in a network namespace of its own
// that gets pid: the kernel hands out ns_last_pid+1 next, so it is set just
// before the fork. Other processes of the machine may fork in between and
// take the pid; the setup is tried again then (the assertions are not).
func startWithPid(t *testing.T, pid int) *exec.Cmd {
	t.Helper()
	for range 50 {
		require.NoError(t, os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0o644))
		cmd := startInNewNetNS(t)
		if cmd.Process.Pid == pid {
			return cmd
		}
		stopProcess(cmd)
	}
	t.Skipf("could not get pid %d again: the machine forks too much", pid)
	return nil
}

// TestWorkloadNamespaceReplaced checks that a workload is plumbed only into
// the namespace checked at attach, and never into whatever its path names
// later: a named namespace made again, a reused pid, across applies and a
// restart of the daemon.
func TestWorkloadNamespaceReplaced(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.use("shop")
	self := spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24")}
	s := specOf("shop", 1, self)
	_, err := n.d.Apply(ctx, s)
	require.NoError(t, err)
	netNS := n.nsName("shop")

	// reapply re-applies the same spec: what an operator does to repair.
	reapply := func(t *testing.T) {
		t.Helper()
		r, err := n.d.Apply(ctx, s)
		require.NoError(t, err)
		require.False(t, r.Changed)
	}
	stateOf := func(t *testing.T, name string) string {
		t.Helper()
		wls, err := n.d.Workloads(ctx, "shop")
		require.NoError(t, err)
		for _, w := range wls {
			if w.Name == name {
				return w.State
			}
		}
		t.Fatalf("no workload %s", name)
		return ""
	}

	step(t, "a path to the node's or znet's namespace is refused at attach", func(t *testing.T) {
		own := exec.Command("sleep", "600") // in the node's namespace
		require.NoError(t, own.Start())
		defer stopProcess(own)
		for _, path := range []string{
			"/proc/self/ns/net",
			fmt.Sprintf("/proc/%d/ns/net", own.Process.Pid),
			fmt.Sprintf("/proc/%d/task/%d/ns/net", own.Process.Pid, own.Process.Pid),
			namespaces.Path(netNS),
		} {
			_, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "evil", NetNS: path})
			requireAPIError(t, err, http.StatusBadRequest, "netns")
		}
		assert.Empty(t, n.allocated(t, "shop"))
	})

	step(t, "a named namespace made again between two applies is not plumbed", func(t *testing.T) {
		ws := n.newWorkloadNS(t)
		a, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "web", NetNS: namespaces.Path(ws)})
		require.NoError(t, err)
		deleteAndWait(t, ws)
		// The bridge end goes with the namespace, asynchronously.
		waitLinks(t, namespaces.Path(netNS), linkNamesWithout(t, netNS, hostIfName("web"))...)
		require.NoError(t, namespaces.Create(ws))
		reapply(t)
		assert.Equal(t, []string{"lo"}, linkNames(t, ws), "the new namespace gets nothing")
		assert.NotContains(t, linkNames(t, netNS), hostIfName("web"))
		assert.Equal(t, api.StateNetNSReplaced, stateOf(t, "web"))
		assert.Equal(t, "workload/web", n.allocated(t, "shop")[a.IPv4], "the address stays reserved")
		st, err := n.d.Status(ctx, "shop")
		require.NoError(t, err)
		assert.Contains(t, st[0].Problems, "workload web: "+namespaces.Path(ws)+
			" names another namespace than the one attached; not plumbed; attach it again or detach it to free "+a.IPv4.String())

		reapply(t) // and again: still not
		assert.Equal(t, []string{"lo"}, linkNames(t, ws))

		again, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "web", NetNS: namespaces.Path(ws)})
		require.NoError(t, err, "its owner attaches it again")
		assert.Equal(t, a.IPv4, again.IPv4, "with the address it kept")
		assert.Equal(t, api.StateAttached, stateOf(t, "web"))
		assert.Contains(t, linkNames(t, ws), "znet0")
		_, err = n.d.Attach(ctx, "shop", api.AttachRequest{Name: "web", NetNS: namespaces.Path(ws)})
		requireAPIError(t, err, http.StatusConflict, "name")
		require.NoError(t, n.d.Detach(ctx, "shop", "web"))
	})

	step(t, "a reused pid is not plumbed, a dead one is gone", func(t *testing.T) {
		first := startInNewNetNS(t)
		pid := first.Process.Pid
		path := fmt.Sprintf("/proc/%d/ns/net", pid)
		a, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "job", NetNS: path, IfName: "zrep0"})
		require.NoError(t, err)
		stopProcess(first)
		waitLinks(t, namespaces.Path(netNS), linkNamesWithout(t, netNS, hostIfName("job"))...)
		assert.Equal(t, api.StateNetNSGone, stateOf(t, "job"))
		reapply(t)
		assert.Equal(t, api.StateNetNSGone, stateOf(t, "job"))

		second := startWithPid(t, pid)
		assert.Equal(t, api.StateNetNSReplaced, stateOf(t, "job"), "the path names the new process's namespace")
		reapply(t)
		assert.Equal(t, []string{"lo"}, linkNames(t, path), "the new process's namespace gets nothing")
		assert.NotContains(t, linkNames(t, netNS), hostIfName("job"))
		assert.Equal(t, api.StateNetNSReplaced, stateOf(t, "job"))
		assert.Equal(t, "workload/job", n.allocated(t, "shop")[a.IPv4])
		stopProcess(second)
		require.NoError(t, n.d.Detach(ctx, "shop", "job"))
		assert.Empty(t, n.allocated(t, "shop"))
	})

	step(t, "a named namespace made again while znetd was down is not plumbed", func(t *testing.T) {
		ws := n.newWorkloadNS(t)
		kept := n.newWorkloadNS(t)
		_, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "db", NetNS: namespaces.Path(ws)})
		require.NoError(t, err)
		_, err = n.d.Attach(ctx, "shop", api.AttachRequest{Name: "kv", NetNS: namespaces.Path(kept)})
		require.NoError(t, err)
		dataplane := n.real.PID(n.dev("shop"))
		n.stop(t)
		deleteAndWait(t, ws)
		require.NoError(t, namespaces.Create(ws))
		// A reboot: the network's namespace is gone too, so every
		// workload needs plumbing again.
		killAndWait(t, dataplane)
		deleteAndWait(t, netNS)
		waitLinks(t, namespaces.Path(kept), "lo")
		n.start(t)
		require.NoError(t, n.d.Recover(ctx))
		assert.Equal(t, []string{"lo"}, linkNames(t, ws), "the new namespace gets nothing")
		assert.Contains(t, linkNames(t, kept), "znet0", "the unchanged namespace is plumbed again")
		assert.Equal(t, api.StateNetNSReplaced, stateOf(t, "db"))
		assert.Equal(t, api.StateAttached, stateOf(t, "kv"))

		n.restart(t)
		require.NoError(t, n.d.Recover(ctx))
		assert.Equal(t, []string{"lo"}, linkNames(t, ws), "nor after another restart")
		assert.Equal(t, api.StateNetNSReplaced, stateOf(t, "db"))
	})
}

// linkNamesWithout returns the links of namespace name but drop.
func linkNamesWithout(t *testing.T, name, drop string) []string {
	t.Helper()
	var out []string
	for _, l := range linkNames(t, name) {
		if l != drop {
			out = append(out, l)
		}
	}
	return out
}
