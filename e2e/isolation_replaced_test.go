package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/dataplane"
	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/overlay"
)

// reapply applies node's current spec of network again: how an operator
// repairs a network, and what makes znetd re-plumb lost workloads.
func reapply(t *testing.T, node lab.Node, network string) {
	t.Helper()
	var shown struct {
		Spec json.RawMessage `json:"spec"`
	}
	znetJSON(t, node, &shown, "network", "show", network)
	_, errOut, err := znetRun(node, string(shown.Spec), "network", "apply", "-f", "-")
	require.NoError(t, err, errOut)
}

// workloadStates returns node's workloads of network by name.
func workloadStates(t *testing.T, node lab.Node, network string) map[string]string {
	t.Helper()
	var wls []api.Workload
	znetJSON(t, node, &wls, "workload", "list", network)
	out := map[string]string{}
	for _, w := range wls {
		out[w.Name] = w.State
	}
	return out
}

// linksOf returns the link names in the named namespace ns.
func linksOf(t *testing.T, ns string) []string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show").CombinedOutput()
	require.NoError(t, err, string(out))
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			names = append(names, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	return names
}

// waitLinks waits until namespace ns has n links.
func waitLinks(t *testing.T, ns string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(linksOf(t, ns)) != n {
		require.True(t, time.Now().Before(deadline), "%s still has %v, want %d links", ns, linksOf(t, ns), n)
		time.Sleep(50 * time.Millisecond)
	}
}

// sleeper starts `sleep` with all its threads in namespace ns (nil: a new
// namespace of its own); with pid set it must get that pid, which the
// kernel hands out next when ns_last_pid is pid-1 (other forks of the
// machine may take it first: the setup is then tried again).
func sleeper(t *testing.T, ns string, pid int) *exec.Cmd {
	t.Helper()
	for range 50 {
		cmd := exec.Command("sleep", "600")
		if pid != 0 {
			require.NoError(t, os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0o644))
		}
		if ns == "" {
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
			require.NoError(t, cmd.Start())
		} else {
			h, err := namespaces.Open(ns)
			require.NoError(t, err)
			err = namespaces.Start(cmd, h)
			_ = h.Close()
			require.NoError(t, err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		if pid == 0 || cmd.Process.Pid == pid {
			return cmd
		}
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	}
	t.Skipf("could not get pid %d again: the machine forks too much", pid)
	return nil
}

// TestIsolationReplacedNamespace extends the isolation matrix (issue 10
// item 1) with workloads whose namespace is replaced behind znet's back:
// a named namespace deleted and made again between two applies, and a
// /proc/PID path whose pid, while znetd was down, went to a process in the
// node's own namespace. Neither new namespace gets an interface or reaches
// anything, and the rest of the network keeps working. It also reads the
// shipped (cgo-free) data plane's threads: its own user, no capabilities, an
// empty bounding set, no_new_privs (item 5).
func TestIsolationReplacedNamespace(t *testing.T) {
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	const network = "rep"
	deploy(t, l, deployment(t, network, "10.90.0.0/16", l.Nodes))
	st1 := networkStatus(t, n1, network)
	near := attach(t, n1, network, "near")
	far := attach(t, n2, network, "far")
	listen(t, near.ns, near.ipv4, "near")
	listen(t, far.ns, far.ipv4, "far")
	ok, _ := within(15*time.Second, func() bool { return probeICMP(near.ns, "", far.ipv4, time.Second) })
	require.True(t, ok, "the mesh works: near reaches far")
	targets := []endpoint{
		{name: "near", addr: near.ipv4}, {name: "far", addr: far.ipv4},
		{name: "gateway", addr: st1.Gateway.String()}, {name: "underlay-" + n1.ID, addr: n1.Underlay.String()},
	}
	reachesNothing := func(t *testing.T, src endpoint) {
		t.Helper()
		var probes []probe
		for _, dst := range targets {
			for _, proto := range []string{"icmp", "tcp", "udp"} {
				probes = append(probes, probe{src: src, dst: dst, proto: proto})
			}
		}
		bad := runMatrix(probes, 8)
		assert.Empty(t, bad, "unexpected outcomes:\n%s", strings.Join(bad, "\n"))
	}

	t.Run("data planes run as their own users without capabilities, and names resolve", func(t *testing.T) {
		for _, n := range l.Nodes {
			pid := dataplanePIDs(t, n)[network]
			require.Positive(t, pid, "data plane of %s", n.ID)
			dir := fmt.Sprintf("/proc/%d/task", pid)
			tasks, err := os.ReadDir(dir)
			require.NoError(t, err)
			for _, task := range tasks {
				b, err := os.ReadFile(dir + "/" + task.Name() + "/status")
				require.NoError(t, err)
				st := string(b)
				// Built without cgo, the bounding set is empty too.
				uid := strconv.Itoa(dataplane.UID(overlay.IfName(n.ID, network)))
				ids := uid + "\t" + uid + "\t" + uid + "\t" + uid
				for _, want := range []string{"\nUid:\t" + ids + "\n", "\nGid:\t" + ids + "\n", "\nCapEff:\t0000000000000000\n",
					"\nCapPrm:\t0000000000000000\n", "\nCapBnd:\t0000000000000000\n", "\nNoNewPrivs:\t1\n"} {
					assert.Contains(t, st, want, "%s data plane thread %s", n.ID, task.Name())
				}
			}
		}
		// Records pushed after the drop answer on both nodes.
		ok, _ := within(5*time.Second, func() bool { a, _ := dig(t, near.ns, "far"); return a == far.ipv4 })
		assert.True(t, ok, "near resolves far")
		ok, _ = within(5*time.Second, func() bool { a, _ := dig(t, far.ns, "near"); return a == near.ipv4 })
		assert.True(t, ok, "far resolves near")
	})

	t.Run("a named namespace made again between two applies", func(t *testing.T) {
		victim := attach(t, n1, network, "victim")
		netNS := namespaces.Name(n1.ID, network)
		ports := len(linksOf(t, netNS))
		out, err := exec.Command("ip", "netns", "del", victim.ns).CombinedOutput()
		require.NoError(t, err, string(out))
		// Its bridge end goes with the namespace, asynchronously: only then
		// does an apply have something to repair.
		ok, _ := within(5*time.Second, func() bool { return len(linksOf(t, netNS)) == ports-1 })
		require.True(t, ok, "the victim's veth is gone from %s", netNS)
		out, err = exec.Command("ip", "netns", "add", victim.ns).CombinedOutput()
		require.NoError(t, err, string(out))
		reapply(t, n1, network)
		assert.Equal(t, []string{"lo"}, linksOf(t, victim.ns), "the new namespace gets no interface")
		assert.Equal(t, api.StateNetNSReplaced, workloadStates(t, n1, network)["victim"])
		st := networkStatus(t, n1, network)
		assert.Contains(t, strings.Join(st.Problems, "\n"), "workload victim: /run/netns/"+victim.ns+" names another namespace")
		reachesNothing(t, endpoint{name: "victim-replaced", ns: victim.ns})
		assert.True(t, probeICMP(near.ns, "", far.ipv4, time.Second), "the others still work")
	})

	t.Run("a reused pid in the node's namespace across a znetd restart", func(t *testing.T) {
		job := sleeper(t, "", 0)
		pid := job.Process.Pid
		var a api.Attachment
		znetJSON(t, n1, &a, "workload", "attach", network, "job", "--netns", fmt.Sprintf("/proc/%d/ns/net", pid), "--ifname", "zrep0")
		require.NoError(t, l.KillNode(n1, syscall.SIGKILL))
		ports := len(linksOf(t, st1.Namespace))
		_ = job.Process.Kill()
		_, _ = job.Process.Wait()
		// The kernel tears a namespace down after its last process, in
		// its own time (seconds on a busy machine); until then the dead
		// job's veth still answers for its address in the kernel. What
		// must not answer is anything after that.
		waitLinks(t, st1.Namespace, ports-1)
		// The pid goes to a process in the node's own (underlay) namespace.
		intruder := sleeper(t, n1.NetNS, pid)
		require.Equal(t, pid, intruder.Process.Pid)
		require.NoError(t, l.StartNode(t.Context(), n1))
		reapply(t, n1, network)
		assert.NotContains(t, linksOf(t, n1.NetNS), "zrep0", "the node's namespace gets no interface")
		assert.Equal(t, api.StateNetNSReplaced, workloadStates(t, n1, network)["job"])
		assert.False(t, probeICMP(far.ns, "", a.IPv4.String(), probeTimeout), "nothing answers for the job's address")
		assert.Empty(t, probeTCP(far.ns, a.IPv4.String(), probeTimeout))
		assert.True(t, probeICMP(near.ns, "", far.ipv4, time.Second), "the others still work")
		znet(t, n1, "workload", "detach", network, "job")
	})
}
