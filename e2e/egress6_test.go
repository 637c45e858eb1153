package e2e

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
)

// The IPv6 side of the egress world: documentation addresses
// (2001:db8::/32), only ever inside the test's namespaces. The node's
// underlay gets 2001:db8:18::<i>/64 on the lab's bridge, the router
// 2001:db8:18::fe, the internet host 2001:db8:7::2, the private LAN host a
// unique local address.
const (
	router6   = "2001:db8:18::fe"
	inetHost6 = "2001:db8:7::2"
	lanHost6  = "fd00:77::2"
)

// node6 is node n's global IPv6 address in the world.
func node6(n lab.Node) string { return fmt.Sprintf("2001:db8:18::%x", n.Underlay.As4()[3]) }

// addIPv6 gives world w and every node of l IPv6: addresses without
// duplicate detection (nothing else holds them), the router forwarding,
// and every node an IPv6 default route through the router. The namespaces
// are the test's own; they go with the world and the lab.
func addIPv6(t *testing.T, l *lab.Lab, w world) {
	t.Helper()
	for _, a := range [][]string{
		{w.router, router6 + "/64", "up0"},
		{w.router, "2001:db8:7::1/64", "in0"},
		{w.router, "fd00:77::1/64", "lan0"},
		{w.inet, inetHost6 + "/64", "eth0"},
		{w.lan, lanHost6 + "/64", "eth0"},
	} {
		ipCmd(t, "-n", a[0], "addr", "add", a[1], "dev", a[2], "nodad")
	}
	ipCmd(t, "-n", w.inet, "-6", "route", "add", "default", "via", "2001:db8:7::1")
	ipCmd(t, "-n", w.lan, "-6", "route", "add", "default", "via", "fd00:77::1")
	_, err := inNS(w.router, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	require.NoError(t, err)
	for _, n := range l.Nodes {
		ipCmd(t, "-n", n.NetNS, "addr", "add", node6(n)+"/64", "dev", "eth0", "nodad")
		ipCmd(t, "-n", n.NetNS, "-6", "route", "replace", "default", "via", router6)
	}
}

// waitNoTentative waits (up to 5 s) until no IPv6 address in namespaces nss
// is still tentative.
func waitNoTentative(t *testing.T, nss ...string) {
	t.Helper()
	for _, ns := range nss {
		require.Eventually(t, func() bool {
			out, err := inNS(ns, "ip", "-6", "addr", "show", "tentative")
			return err == nil && strings.TrimSpace(out) == ""
		}, 5*time.Second, 50*time.Millisecond, "tentative IPv6 addresses in %s", ns)
	}
}

// transfer6Of returns the IPv6 transfer address the underlay routes to the
// one egress veth on node n.
func transfer6Of(t *testing.T, n lab.Node) string {
	t.Helper()
	out, err := inNS(n.NetNS, "ip", "-6", "route", "show", "dev", egressLinkOf(t, n))
	require.NoError(t, err, out)
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "fd5a:6e65:6567:") {
			return f
		}
	}
	t.Fatalf("no IPv6 transfer route on %s:\n%s", n.ID, out)
	return ""
}

// TestEgressIPv6 covers IPv6 egress (issue 15): where the node has a
// global IPv6 address and an IPv6 default route, an egress network's
// workloads reach the internet over IPv6 too, as the node, and nothing
// else; nothing from outside opens a connection to them; egress off cuts
// it. TestEgress covers a node without global IPv6 (no IPv6 way out).
func TestEgressIPv6(t *testing.T) {
	l := newLab(t, 1)
	n := l.Nodes[0]
	w := newWorld(t, l)
	addIPv6(t, l, w)
	egressDeploy(t, l, "out6", "10.82.0.0/16", true)
	egressDeploy(t, l, "shut6", "10.83.0.0/16", false)
	o := attach(t, n, "out6", "o6")
	s := attach(t, n, "shut6", "s6")
	peerServer(t, w.inet, inetHost6)
	targets := map[string]*listener{
		"node":     listen(t, n.NetNS, node6(n), "node"),
		"router":   listen(t, w.router, router6, "router"),
		"lan host": listen(t, w.lan, lanHost6, "lan host"),
		"other":    listen(t, s.ns, s.ipv6, "other network"),
	}
	listen(t, o.ns, o.ipv6, "out workload")
	// Fresh interfaces hold tentative link-local addresses for a second or
	// two (duplicate detection), and neighbour discovery waits on them:
	// the world is ready when none is left.
	waitNoTentative(t, w.router, w.inet, w.lan, n.NetNS, o.ns, namespaces.Name(n.ID, "out6"))

	t.Run("a workload reaches the internet over IPv6 as its node", func(t *testing.T) {
		out, err := inNS(o.ns, "ip", "-6", "route", "show", "default")
		require.NoError(t, err)
		assert.Contains(t, out, "default via", "the workload has an IPv6 default route")
		assert.True(t, probeICMP(o.ns, "", inetHost6, time.Second), "ping6")
		assert.Equal(t, node6(n), probeTCP(o.ns, inetHost6, time.Second), "the host sees the node's IPv6 address")
		if t.Failed() {
			for _, c := range [][]string{
				{n.NetNS, "nft", "list", "table", "inet", "znet-egress"}, {n.NetNS, "ip", "-6", "route"}, {n.NetNS, "ip", "-6", "neigh"},
				{n.NetNS, "sysctl", "net.ipv6.conf.all.forwarding"},
				{o.ns, "ping", "-c", "2", "-W", "1", inetHost6}, {n.NetNS, "ping", "-c", "1", "-W", "1", inetHost6},
				{n.NetNS, "conntrack", "-L", "-f", "ipv6"},
			} {
				out, err := inNS(c[0], c[1:]...)
				t.Logf("%v: %v\n%s", c, err, out)
			}
		}
	})

	t.Run("nothing but the internet over IPv6", func(t *testing.T) {
		for name, ln := range targets {
			dst := strings.Trim(ln.tcp.Addr().String()[:strings.LastIndex(ln.tcp.Addr().String(), ":")], "[]")
			assert.Empty(t, probeTCP(o.ns, dst, probeTimeout), "tcp -> %s (%s)", name, dst)
			assert.False(t, probeICMP(o.ns, "", dst, probeTimeout), "icmp -> %s (%s)", name, dst)
		}
	})

	t.Run("the internet opens no connection to a workload's IPv6", func(t *testing.T) {
		// Routed at the node: the network's range and the transfer prefix.
		st := networkStatus(t, n, "out6")
		ipCmd(t, "-n", w.router, "-6", "route", "replace", st.Subnet6.String(), "via", node6(n))
		ipCmd(t, "-n", w.router, "-6", "route", "replace", "fd5a:6e65:6567::/48", "via", node6(n))
		assert.Empty(t, probeTCP(w.inet, o.ipv6, probeTimeout), "internet -> workload")
		assert.False(t, probeICMP(w.inet, "", o.ipv6, probeTimeout), "internet ping -> workload")
		assert.Empty(t, probeTCP(n.NetNS, o.ipv6, probeTimeout), "node -> workload")
	})

	t.Run("egress off cuts IPv6 at once", func(t *testing.T) {
		c, err := dialFrom(o.ns, inetHost6, time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		r := bufio.NewReader(c)
		_, err = r.ReadString('\n')
		require.NoError(t, err)
		require.True(t, echo(c, r, "before", time.Second), "the flow works")
		src6 := transfer6Of(t, n)
		require.NotZero(t, trackedFrom(t, n.NetNS, src6), "no tracked flow from %s", src6)
		egressDeploy(t, l, "out6", "10.82.0.0/16", false)
		assert.Zero(t, trackedFrom(t, n.NetNS, src6), "tracked flows from %s left in the underlay", src6)
		assert.Zero(t, trackedFrom(t, namespaces.Name(n.ID, "out6"), src6), "tracked flows via %s left in the network", src6)
		assert.False(t, echo(c, r, "after", time.Second), "the IPv6 flow still runs")
		assert.Empty(t, probeTCP(o.ns, inetHost6, probeTimeout), "new IPv6 flow")
		assert.False(t, probeICMP(o.ns, "", inetHost6, probeTimeout), "ping6")
		out, err := inNS(o.ns, "ip", "-6", "route", "show", "default")
		require.NoError(t, err)
		assert.Empty(t, strings.TrimSpace(out), "the IPv6 default route stays after egress off")
	})
}
