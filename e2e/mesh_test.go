package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
)

// deployNode is one node entry of a deployment file.
type deployNode struct {
	ID           string `json:"id"`
	API          string `json:"api"`
	EndpointHost string `json:"endpoint_host,omitempty"`
	Hidden       bool   `json:"hidden,omitempty"`
	ListenPort   int    `json:"listen_port,omitempty"`
}

// ports asks given nodes for given UDP ports in deployments made while it
// is set (node id -> port).
var ports = map[string]int{}

// deployment writes a deployment file for network over nodes; the ids in
// hidden are hidden behind NAT.
func deployment(t *testing.T, network, ipRange string, nodes []lab.Node, hidden ...string) string {
	t.Helper()
	return deploymentMTU(t, network, ipRange, 0, nodes, hidden...)
}

// deploymentMTU is deployment with an overlay MTU (0: none, each node
// derives its own).
func deploymentMTU(t *testing.T, network, ipRange string, mtu int, nodes []lab.Node, hidden ...string) string {
	t.Helper()
	d := struct {
		Name    string       `json:"name"`
		IPRange string       `json:"ip_range"`
		MTU     int          `json:"mtu,omitempty"`
		Nodes   []deployNode `json:"nodes"`
	}{Name: network, IPRange: ipRange, MTU: mtu}
	for _, n := range nodes {
		e := deployNode{ID: n.ID, API: "unix://" + n.Socket, EndpointHost: n.Underlay.String(), ListenPort: ports[n.ID]}
		for _, h := range hidden {
			if h == n.ID {
				e.EndpointHost, e.Hidden = "", true
			}
		}
		d.Nodes = append(d.Nodes, e)
	}
	b, err := json.Marshal(d)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), network+".json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// deploy runs `znet deploy` (through the first node's socket flag, which
// deploy ignores: the file names every node's API).
func deploy(t *testing.T, l *lab.Lab, file string) string {
	t.Helper()
	out, errOut, err := znetRun(l.Nodes[0], "", "deploy", "-f", file, "--state-dir", filepath.Join(l.Dir, "deploy"), "--timeout", "90s")
	require.NoError(t, err, "deploy: %s\n%s", errOut, out)
	return out
}

// wgShow runs `wg show <dev> <what>` inside node's namespace of network.
func wgShow(t *testing.T, node lab.Node, network, what string) string {
	t.Helper()
	var st []api.NetworkStatus
	znetJSON(t, node, &st, "status", network)
	require.Len(t, st, 1)
	out, err := inNS(namespaces.Name(node.ID, network), "wg", "show", st[0].Interface, what)
	require.NoError(t, err, out)
	return out
}

// handshakes returns peer public key -> latest handshake (unix seconds).
func handshakes(t *testing.T, node lab.Node, network string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(wgShow(t, node, network, "latest-handshakes")), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			out[f[0]] = f[1]
		}
	}
	return out
}

// settledHandshakes waits until every peer of node has completed a
// handshake more than 7 s ago (WireGuard's REKEY_TIMEOUT of 5 s, its
// jitter, and wg's whole seconds), and returns them. An initiation sent
// while the other side was still being configured is retried by the
// protocol 5 s later and completes a second handshake; that retry began
// before whatever the caller is about to do, so it must not be blamed on it.
func settledHandshakes(t *testing.T, node lab.Node, network string) map[string]string {
	t.Helper()
	var hs map[string]string
	ok, _ := within(15*time.Second, func() bool {
		hs = handshakes(t, node, network)
		for _, ts := range hs {
			sec, err := strconv.ParseInt(ts, 10, 64)
			if err != nil || sec == 0 || time.Since(time.Unix(sec, 0)) < 7*time.Second {
				return false
			}
		}
		return len(hs) > 0
	})
	require.True(t, ok, "handshakes of %s never settled: %v", node.ID, hs)
	return hs
}

// TestMesh covers issue 3 on a lab: the encrypted full mesh with a hidden
// node, a node joining without disturbing others, a node leaving, stale
// generations, and two networks with the same range over the same nodes.
func TestMesh(t *testing.T) {
	l := newLab(t, 4)
	parent := t // workloads made in subtests live as long as the lab
	n1, n2, n3, n4 := l.Nodes[0], l.Nodes[1], l.Nodes[2], l.Nodes[3]
	file := deployment(t, "mesh", "10.40.0.0/16", l.Nodes[:3], n3.ID)
	deploy(t, l, file)

	w := map[string]attached{}
	for _, n := range l.Nodes[:3] {
		w[n.ID] = attach(t, n, "mesh", "w"+n.ID[len(n.ID)-1:])
	}
	pingAll := func(t *testing.T, ids ...string) {
		for _, a := range ids {
			for _, b := range ids {
				if a == b {
					continue
				}
				// Under a loaded machine (make test runs packages side by
				// side) the first packets of a fresh tunnel were seen lost
				// for a few seconds; the wait is logged when it happens.
				for _, dst := range []string{w[b].ipv4, w[b].ipv6} {
					ok, took := within(10*time.Second, func() bool { return pingOK(w[a].ns, dst) })
					assert.True(t, ok, "%s -> %s %s", a, b, dst)
					if took > 2*time.Second {
						t.Logf("%s -> %s %s answered only after %s", a, b, dst, took)
					}
				}
			}
		}
	}
	t.Run("every workload reaches every other, IPv4 and IPv6", func(t *testing.T) {
		pingAll(t, n1.ID, n2.ID, n3.ID)
		if t.Failed() {
			for _, n := range l.Nodes[:3] {
				t.Logf("%s at %s:\n%s\n%s", n.ID, time.Now().Format(time.StampMilli), wgShow(t, n, "mesh", "latest-handshakes"), wgShow(t, n, "mesh", "endpoints"))
			}
		}
	})

	t.Run("iperf3 across the mesh", func(t *testing.T) {
		srv := exec.Command("ip", "netns", "exec", w[n1.ID].ns, "iperf3", "-s", "-B", w[n1.ID].ipv4)
		require.NoError(t, srv.Start())
		defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
		var (
			out      string
			received int64
		)
		// The server needs a moment to listen; a run that could not
		// connect reports no bytes.
		ok, _ := within(15*time.Second, func() bool {
			out, _ = inNS(w[n2.ID].ns, "iperf3", "-c", w[n1.ID].ipv4, "-t", "2", "-J")
			var res struct {
				End struct {
					SumReceived struct {
						Bytes int64 `json:"bytes"`
					} `json:"sum_received"`
				} `json:"end"`
			}
			if json.Unmarshal([]byte(out), &res) != nil {
				return false
			}
			received = res.End.SumReceived.Bytes
			return received > 1<<20
		})
		assert.True(t, ok, "iperf3 moved %d bytes: %s", received, out)
	})

	t.Run("a fourth (hidden) node joins without a lost packet or a reset handshake", func(t *testing.T) {
		before := settledHandshakes(t, n1, "mesh")
		ping := exec.Command("ip", "netns", "exec", w[n1.ID].ns, "ping", "-c", "300", "-i", "0.01", "-W", "1", w[n2.ID].ipv4)
		out := make(chan string, 1)
		go func() { b, _ := ping.CombinedOutput(); out <- string(b) }()
		time.Sleep(200 * time.Millisecond)
		deploy(t, l, deployment(t, "mesh", "10.40.0.0/16", l.Nodes, n3.ID, n4.ID))
		res := <-out
		assert.Contains(t, res, " 0% packet loss", res)
		after := handshakes(t, n1, "mesh")
		for key, ts := range before {
			assert.Equal(t, ts, after[key], "handshake with %s was reset", key)
		}
		w[n4.ID] = attach(parent, n4, "mesh", "w4")
		pingAll(t, n1.ID, n2.ID, n3.ID, n4.ID) // n3 <-> n4: hidden to hidden via the relay
	})

	t.Run("a stale generation is refused and changes nothing", func(t *testing.T) {
		var detail api.NetworkDetail
		znetJSON(t, n1, &detail, "network", "show", "mesh")
		stale := *detail.Spec
		stale.Generation--
		b, err := json.Marshal(stale)
		require.NoError(t, err)
		_, errOut, err := znetRun(n1, string(b), "network", "apply", "-f", "-")
		require.Error(t, err)
		assert.Contains(t, errOut, "generation")
		var again api.NetworkDetail
		znetJSON(t, n1, &again, "network", "show", "mesh")
		assert.Equal(t, detail.Spec.Generation, again.Spec.Generation)
	})

	t.Run("changing a node's port re-points its peers", func(t *testing.T) {
		ports[n1.ID] = 51999
		defer delete(ports, n1.ID)
		deploy(t, l, deployment(t, "mesh", "10.40.0.0/16", l.Nodes, n3.ID, n4.ID))
		for _, n := range []lab.Node{n2, n3, n4} {
			assert.Contains(t, wgShow(t, n, "mesh", "endpoints"), n1.Underlay.String()+":51999", "%s still sends to n1's old port", n.ID)
		}
		assert.Contains(t, wgShow(t, n1, "mesh", "listen-port"), "51999")
		pingAll(t, n1.ID, n2.ID, n3.ID, n4.ID)
	})

	t.Run("a node that leaves is gone everywhere", func(t *testing.T) {
		var st []api.NetworkStatus
		znetJSON(t, n2, &st, "status", "mesh")
		key2 := st[0].PublicKey
		pid2 := st[0].PID
		deploy(t, l, deployment(t, "mesh", "10.40.0.0/16", []lab.Node{n1, n3, n4}, n3.ID, n4.ID))
		for _, n := range []lab.Node{n1, n3, n4} {
			assert.NotContains(t, wgShow(t, n, "mesh", "peers"), key2, "%s still peers with the removed node", n.ID)
		}
		assert.False(t, namespaces.Exists(namespaces.Name(n2.ID, "mesh")))
		assert.NoDirExists(t, fmt.Sprintf("/proc/%d", pid2), "data plane of the removed node still runs")
		assert.False(t, pingOK(w[n1.ID].ns, w[n2.ID].ipv4))
		out, _ := inNS(namespaces.Name(n1.ID, "mesh"), "ip", "route", "get", w[n2.ID].ipv4)
		assert.NotContains(t, out, "dev zn", "the removed node's subnet still routes into the mesh: %s", out)
		pingAll(t, n1.ID, n3.ID, n4.ID)
	})

	t.Run("two networks with the same range over the same nodes stay apart", func(t *testing.T) {
		deploy(t, l, deployment(t, "other", "10.40.0.0/16", []lab.Node{n1, n3, n4}, n3.ID, n4.ID))
		// Both networks give n1 the same subnet; o1 takes an address that
		// is free in mesh, and mesh's w1 keeps one that is free in other.
		o1 := attach(parent, n1, "other", "o1", "--ipv4", ipIn(w[n1.ID].ipv4, 50))
		o3 := attach(parent, n3, "other", "o3")
		assert.True(t, pingOK(o1.ns, o3.ipv4))
		assert.True(t, pingOK(o3.ns, o1.ipv4))
		assert.False(t, pingOK(o3.ns, w[n1.ID].ipv4), "other reached mesh's w1")
		assert.False(t, pingOK(w[n3.ID].ns, o1.ipv4), "mesh reached other's o1")
		assert.False(t, pingOK(o1.ns, w[n4.ID].ipv4), "other reached mesh's w4")
	})
}

// ipIn returns the address in the /24 of addr with the last byte host.
func ipIn(addr string, host int) string {
	return addr[:strings.LastIndex(addr, ".")+1] + fmt.Sprint(host)
}
