package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
)

// oneNodeSpec is a spec that lists only this node: its own entry may omit
// the key, the node uses the one it reserved.
func oneNodeSpec(name, node string, gen int) string {
	return fmt.Sprintf(`{"name":%q,"generation":%d,"ip_range":"10.20.0.0/16","nodes":[{"id":%q,"subnet":"10.20.1.0/24"}]}`, name, gen, node)
}

type attached struct {
	ns   string
	ipv4 string
	ipv6 string
}

func attach(t testing.TB, node lab.Node, network, name string, extra ...string) attached {
	t.Helper()
	ns := workloadNS(t, name)
	var a api.Attachment
	znetJSON(t, node, &a, append([]string{"workload", "attach", network, name, "--netns", "/run/netns/" + ns}, extra...)...)
	return attached{ns: ns, ipv4: a.IPv4.String(), ipv6: a.IPv6.String()}
}

// TestOneNode covers issue 2's promises on one node: two networks with the
// same range stay apart, workloads cannot leave their network or spoof,
// and the data plane outlives znetd, even a reboot.
func TestOneNode(t *testing.T) {
	l := newLab(t, 1)
	node := l.Nodes[0]
	for _, nw := range []string{"red", "blue"} {
		_, errOut, err := znetRun(node, oneNodeSpec(nw, node.ID, 1), "network", "apply", "-f", "-")
		require.NoError(t, err, errOut)
	}
	red1 := attach(t, node, "red", "web")
	red2 := attach(t, node, "red", "db")
	blue1 := attach(t, node, "blue", "web", "--ipv4", "10.20.1.10")
	blue2 := attach(t, node, "blue", "db", "--ipv4", "10.20.1.11")

	t.Run("same network reaches both ways, IPv4 and IPv6", func(t *testing.T) {
		for _, c := range []struct{ from, to attached }{{red1, red2}, {red2, red1}, {blue1, blue2}, {blue2, blue1}} {
			assert.True(t, pingOK(c.from.ns, c.to.ipv4), "%s -> %s", c.from.ns, c.to.ipv4)
			assert.True(t, pingOK(c.from.ns, c.to.ipv6), "%s -> %s", c.from.ns, c.to.ipv6)
		}
	})
	t.Run("other network with the same range is unreachable", func(t *testing.T) {
		assert.False(t, pingOK(red1.ns, blue1.ipv4))
		assert.False(t, pingOK(red1.ns, blue2.ipv4))
		assert.False(t, pingOK(blue1.ns, red2.ipv4), "blue must not reach red's .3 even though red has it")
		assert.False(t, pingOK(blue2.ns, red1.ipv6))
	})
	t.Run("the node's underlay is unreachable, even with a default route", func(t *testing.T) {
		out, err := inNS(red1.ns, "ip", "route", "add", "default", "via", "10.20.1.1")
		require.NoError(t, err, out)
		assert.False(t, pingOK(red1.ns, node.Underlay.String()))
	})
	t.Run("spoofed source gets nothing through", func(t *testing.T) {
		// The workload takes another address (red2's and a free one) and
		// sends from it.
		for _, spoof := range []string{"10.20.1.99", red2.ipv4} {
			out, err := inNS(red1.ns, "ip", "addr", "add", spoof+"/32", "dev", "znet0")
			require.NoError(t, err, out)
			_, err = inNS(red1.ns, "ping", "-c", "2", "-i", "0.2", "-W", "1", "-I", spoof, red2.ipv4)
			assert.Error(t, err, "ping from spoofed %s", spoof)
			out, err = inNS(red1.ns, "ip", "addr", "del", spoof+"/32", "dev", "znet0")
			assert.NoError(t, err, out)
		}
		assert.True(t, pingOK(red1.ns, red2.ipv4), "the real address still works")
	})
	t.Run("workload list shows each workload", func(t *testing.T) {
		var wls []api.Workload
		znetJSON(t, node, &wls, "workload", "list", "red")
		require.Len(t, wls, 2)
		assert.Equal(t, "db", wls[0].Name)
		assert.Equal(t, red2.ipv4, wls[0].IPv4.String())
		assert.Equal(t, api.StateAttached, wls[0].State)
		assert.Equal(t, "/run/netns/"+red2.ns, wls[0].NetNS)
		b, err := os.ReadFile("/etc/netns/" + red1.ns + "/resolv.conf")
		require.NoError(t, err)
		assert.Contains(t, string(b), "nameserver 10.20.1.1\nsearch red.internal\n")
	})

	t.Run("kill -9 of znetd drops no packet; restart adopts the data planes", func(t *testing.T) {
		before := znet(t, node, "network", "list", "--json")
		pids := dataplanePIDs(t, node)
		require.Len(t, pids, 2)

		ping := exec.Command("ip", "netns", "exec", red1.ns, "ping", "-c", "200", "-i", "0.01", "-W", "1", red2.ipv4)
		out := make(chan string, 1)
		go func() { b, _ := ping.CombinedOutput(); out <- string(b) }()
		time.Sleep(300 * time.Millisecond)
		require.NoError(t, l.KillNode(node, syscall.SIGKILL))
		res := <-out
		assert.Contains(t, res, "200 received", res)
		require.NoError(t, l.StartNode(t.Context(), node))
		assert.JSONEq(t, before, znet(t, node, "network", "list", "--json"))
		assert.Equal(t, pids, dataplanePIDs(t, node), "data planes were re-created")
		assert.True(t, pingOK(red1.ns, red2.ipv4))
	})

	t.Run("a reboot brings everything back", func(t *testing.T) {
		pids := dataplanePIDs(t, node)
		require.NoError(t, l.KillNode(node, syscall.SIGKILL))
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		left, err := namespaces.List(namespaces.NodePrefix(node.ID))
		require.NoError(t, err)
		require.Len(t, left, 2)
		for _, name := range left {
			id, err := namespaces.Identify(namespaces.Path(name))
			require.NoError(t, err)
			require.NoError(t, namespaces.Delete(name))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			require.NoError(t, namespaces.WaitGone(ctx, id))
			cancel()
		}
		// The kernel dismantles a namespace's links shortly after the last
		// reference goes, the workloads' ends of its veths with them (on a
		// loaded machine that takes seconds); a reboot leaves none.
		require.Eventually(t, func() bool {
			for _, w := range []attached{red1, red2, blue1, blue2} {
				if exec.Command("ip", "-n", w.ns, "link", "show", "znet0").Run() == nil {
					return false
				}
			}
			return true
		}, 30*time.Second, 100*time.Millisecond, "the workloads' ports are really gone")
		require.False(t, pingOK(red1.ns, red2.ipv4), "the network is really down")
		require.NoError(t, l.StartNode(t.Context(), node))
		for _, c := range []struct{ from, to attached }{{red1, red2}, {blue2, blue1}} {
			assert.True(t, pingOK(c.from.ns, c.to.ipv4), "%s -> %s", c.from.ns, c.to.ipv4)
			assert.True(t, pingOK(c.from.ns, c.to.ipv6), "%s -> %s", c.from.ns, c.to.ipv6)
		}
		assert.False(t, pingOK(red1.ns, blue1.ipv4))
	})

	t.Run("delete refuses a network with workloads unless forced", func(t *testing.T) {
		_, errOut, err := znetRun(node, "", "network", "delete", "blue")
		require.Error(t, err)
		assert.Contains(t, errOut, "workloads")
		znet(t, node, "workload", "detach", "blue", "web")
		znet(t, node, "network", "delete", "blue", "--force")
		assert.False(t, namespaces.Exists(namespaces.Name(node.ID, "blue")))
		_, errOut, err = znetRun(node, "", "network", "show", "blue")
		require.Error(t, err)
		assert.Contains(t, errOut, "no network blue")
	})
}

// dataplanePIDs returns the data-plane pid of every network of node.
func dataplanePIDs(t *testing.T, node lab.Node) map[string]int {
	t.Helper()
	var st []api.NetworkStatus
	znetJSON(t, node, &st, "status")
	pids := map[string]int{}
	for _, s := range st {
		if s.PID != 0 {
			pids[s.Name] = s.PID
		}
	}
	return pids
}
