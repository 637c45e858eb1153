package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/namespaces"
)

// TestDataplaneSurvivesDNSFlood covers issue 10's flood: workloads hold more
// TCP connections to the gateway's port 53 than the data plane has file
// descriptors (its limit lowered to a little above what it uses), while an
// operator runs `znet status`, which reads the device over its UAPI
// socket. The data plane must keep running (same pid), status and DNS
// must answer during the flood, and TCP DNS within seconds after it.
func TestDataplaneSurvivesDNSFlood(t *testing.T) {
	l := newLab(t, 1)
	node := l.Nodes[0]
	_, errOut, err := znetRun(node, oneNodeSpec("flood", node.ID, 1), "network", "apply", "-f", "-")
	require.NoError(t, err, errOut)
	var ws []attached
	for i := range 3 {
		ws = append(ws, attach(t, node, "flood", fmt.Sprintf("w%d", i)))
	}
	pid := dataplanePIDs(t, node)["flood"]
	require.NotZero(t, pid)
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	limit := uint64(len(fds) + 48)
	lowerNofile(t, pid, limit)
	gateway := net.JoinHostPort(networkStatus(t, node, "flood").Gateway.String(), "53")

	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for _, w := range ws {
		require.NoError(t, namespaces.DoPath("/run/netns/"+w.ns, func() error {
			for range limit {
				c, err := net.DialTimeout("tcp", gateway, 2*time.Second)
				if err != nil {
					return err
				}
				conns = append(conns, c)
			}
			return nil
		}))
	}
	t.Logf("holding %d connections to %s; the data plane's descriptor limit is %d", len(conns), gateway, limit)

	// wg reads the device over its UAPI socket, as the daemon does.
	uapiPort := func(st api.NetworkStatus) string {
		out, err := inNS(st.Namespace, "wg", "show", st.Interface, "listen-port")
		if err != nil {
			return out
		}
		return strings.TrimSpace(out)
	}
	for range 3 {
		st := networkStatus(t, node, "flood")
		assert.Equal(t, pid, st.PID, "the data plane still runs: %v", st.Problems)
		assert.Equal(t, fmt.Sprint(st.ListenPort), uapiPort(st), "UAPI during the flood")
		short, err := inNS(ws[0].ns, "dig", "+short", "+time=1", "+tries=2", "w1.flood.internal")
		assert.NoError(t, err, short)
		assert.Equal(t, ws[1].ipv4, strings.TrimSpace(short), "UDP DNS during the flood")
	}
	for _, c := range conns {
		_ = c.Close()
	}

	ok, took := within(5*time.Second, func() bool {
		short, err := inNS(ws[0].ns, "dig", "+tcp", "+short", "+time=1", "+tries=1", "w2.flood.internal")
		return err == nil && strings.TrimSpace(short) == ws[2].ipv4
	})
	assert.True(t, ok, "TCP DNS works again after the flood")
	t.Logf("TCP DNS answered %s after the flood ended", took)
	st := networkStatus(t, node, "flood")
	assert.Equal(t, pid, st.PID, "the same data plane")
	assert.Equal(t, fmt.Sprint(st.ListenPort), uapiPort(st), "UAPI after the flood")
}

// lowerNofile sets the descriptor limit of process pid to limit. The data
// plane runs as its own user, and changing another user's limits takes
// CAP_SYS_RESOURCE, which a test machine may not grant even to root; a
// process of the same user and group may, so prlimit runs as the data
// plane's user and group.
func lowerNofile(t *testing.T, pid int, limit uint64) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	ids := map[string]string{}
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "Uid" || k == "Gid") {
			ids[k] = strings.Fields(v)[0]
		}
	}
	out, err := exec.Command("setpriv", "--reuid="+ids["Uid"], "--regid="+ids["Gid"], "--clear-groups",
		"prlimit", "--pid", fmt.Sprint(pid), fmt.Sprintf("--nofile=%d:%d", limit, limit)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(limits), "\n") {
		if f := strings.Fields(line); len(f) >= 5 && strings.HasPrefix(line, "Max open files") {
			require.Equal(t, fmt.Sprint(limit), f[3], "%s", line)
			return
		}
	}
	t.Fatalf("no open files limit in %s", limits)
}
