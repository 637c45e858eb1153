package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
)

// dig asks the workload's resolver (from its resolv.conf) and returns the
// short answer and the status line.
func dig(t *testing.T, ns string, args ...string) (answer, status string) {
	t.Helper()
	out, err := inNS(ns, append([]string{"dig", "+search", "+time=1", "+tries=1"}, args...)...)
	require.NoError(t, err, out)
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "status: "); i >= 0 {
			status = strings.TrimRight(strings.Fields(line[i+len("status: "):])[0], ",")
		}
	}
	short, err := inNS(ns, append([]string{"dig", "+search", "+short", "+time=1", "+tries=1"}, args...)...)
	require.NoError(t, err, short)
	return strings.TrimSpace(short), status
}

// within polls fn every 50 ms for up to d and reports whether it held, and
// how long it took.
func within(d time.Duration, fn func() bool) (bool, time.Duration) {
	start := time.Now()
	for time.Since(start) < d {
		if fn() {
			return true, time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fn(), time.Since(start)
}

// TestDNS covers issue 4 on a 3-node lab (node 3 hidden).
func TestDNS(t *testing.T) {
	l := newLab(t, 3)
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	deploy(t, l, deployment(t, "shop", "10.70.0.0/16", l.Nodes, n3.ID))
	deploy(t, l, deployment(t, "other", "10.70.0.0/16", l.Nodes, n3.ID))
	web1 := attach(t, n1, "shop", "web1")
	web2 := attach(t, n2, "shop", "web2")
	web3 := attach(t, n3, "shop", "web3")
	secret := attach(t, n2, "other", "secret")

	t.Run("names of other nodes answer over UDP and TCP, A and AAAA, and in reverse", func(t *testing.T) {
		ok, took := within(3*time.Second, func() bool { a, _ := dig(t, web1.ns, "web2"); return a == web2.ipv4 })
		require.True(t, ok, "web2 never resolved on node 1")
		t.Logf("web2 resolved on node 1 %s after attach finished", took)
		a, status := dig(t, web1.ns, "+tcp", "web2")
		assert.Equal(t, web2.ipv4, a)
		assert.Equal(t, "NOERROR", status)
		a, _ = dig(t, web1.ns, "AAAA", "web2.shop.internal")
		assert.Equal(t, web2.ipv6, a)
		a, _ = dig(t, web1.ns, "-x", web2.ipv4)
		assert.Equal(t, "web2.shop.internal.", a)
		a, _ = dig(t, web3.ns, "web1") // from the hidden node
		assert.Equal(t, web1.ipv4, a)
	})
	t.Run("a new name answers on every node within a second, and goes within a second", func(t *testing.T) {
		api2 := attach(t, n2, "shop", "api")
		for _, w := range []attached{web1, web2, web3} {
			ok, took := within(time.Second, func() bool { a, _ := dig(t, w.ns, "api"); return a == api2.ipv4 })
			assert.True(t, ok, "api did not resolve in %s within 1s", w.ns)
			t.Logf("api resolved in %s after %s", w.ns, took)
		}
		znet(t, n2, "workload", "detach", "shop", "api")
		for _, w := range []attached{web1, web3} {
			ok, took := within(time.Second, func() bool { _, st := dig(t, w.ns, "api.shop.internal"); return st == "NXDOMAIN" })
			assert.True(t, ok, "api still answered in %s after 1s", w.ns)
			t.Logf("api gone in %s after %s", w.ns, took)
		}
	})
	t.Run("another network's names never resolve; the internet is refused", func(t *testing.T) {
		_, status := dig(t, web1.ns, "secret.shop.internal")
		assert.Equal(t, "NXDOMAIN", status)
		_, status = dig(t, web1.ns, "secret.other.internal")
		assert.Equal(t, "REFUSED", status)
		_, status = dig(t, secret.ns, "web2.shop.internal")
		assert.Equal(t, "REFUSED", status)
		_, status = dig(t, web1.ns, "example.com")
		assert.Equal(t, "REFUSED", status)
	})
	t.Run("status shows each resolver's serial and records", func(t *testing.T) {
		var st []api.NetworkStatus
		znetJSON(t, n1, &st, "status", "shop")
		require.NotNil(t, st[0].DNS)
		assert.Equal(t, 1, st[0].DNS.Records)
		require.Len(t, st[0].DNS.Members, 2)
		assert.Equal(t, n2.ID, st[0].DNS.Members[0].ID)
		assert.Equal(t, 1, st[0].DNS.Members[0].Records)
	})
	t.Run("kill -9 of znetd: names keep answering", func(t *testing.T) {
		require.NoError(t, l.KillNode(n1, syscall.SIGKILL))
		for range 20 {
			a, _ := dig(t, web1.ns, "web2")
			require.Equal(t, web2.ipv4, a)
			a, _ = dig(t, web1.ns, "web1")
			require.Equal(t, web1.ipv4, a)
		}
		require.NoError(t, l.StartNode(t.Context(), n1))
		a, _ := dig(t, web1.ns, "web3")
		assert.Equal(t, web3.ipv4, a)
	})
}
