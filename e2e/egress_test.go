package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
)

// The simulated world around a lab for egress: a router on the lab's
// underlay (198.18.0.254) that every node takes as its default route, an
// internet host behind it (198.19.7.2, still the benchmarking range, so
// nothing real is ever addressed) and a private LAN host (192.168.77.2).
// Everything lives in namespaces the test makes.
const (
	routerAddr = "198.18.0.254"
	inetHost   = "198.19.7.2"
	lanHost    = "192.168.77.2"
)

// world is the router, internet host and LAN host namespaces.
type world struct {
	router, inet, lan string
}

// ipCmd runs ip with args and fails the test on an error.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// newWorld builds the router and hosts for lab l and points every node's
// default route at the router. The cleanup removes the namespaces (and
// with them their veths); the nodes' routes go with the lab.
func newWorld(t *testing.T, l *lab.Lab) world {
	t.Helper()
	p := "zte" + randName()
	w := world{router: p + "-rt", inet: p + "-inet", lan: p + "-lan"}
	for _, ns := range []string{w.router, w.inet, w.lan} {
		require.NoError(t, namespaces.Create(ns))
		t.Cleanup(func() { assert.NoError(t, namespaces.Delete(ns)) })
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	}
	// The router's leg on the lab's underlay bridge.
	ipCmd(t, "link", "add", "up0", "netns", w.router, "type", "veth", "peer", "name", p+"u", "netns", l.Internet)
	ipCmd(t, "-n", l.Internet, "link", "set", p+"u", "master", "inet0", "up")
	ipCmd(t, "-n", w.router, "addr", "add", routerAddr+"/24", "dev", "up0")
	ipCmd(t, "-n", w.router, "link", "set", "up0", "up")
	// A leg to each host.
	for _, leg := range []struct{ ns, dev, rt, host string }{
		{w.inet, "in0", "198.19.7.1", inetHost},
		{w.lan, "lan0", "192.168.77.1", lanHost},
	} {
		ipCmd(t, "link", "add", leg.dev, "netns", w.router, "type", "veth", "peer", "name", "eth0", "netns", leg.ns)
		ipCmd(t, "-n", w.router, "addr", "add", leg.rt+"/24", "dev", leg.dev)
		ipCmd(t, "-n", w.router, "link", "set", leg.dev, "up")
		ipCmd(t, "-n", leg.ns, "addr", "add", leg.host+"/24", "dev", "eth0")
		ipCmd(t, "-n", leg.ns, "link", "set", "eth0", "up")
		ipCmd(t, "-n", leg.ns, "route", "add", "default", "via", leg.rt)
	}
	_, err := inNS(w.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	require.NoError(t, err)
	for _, n := range l.Nodes {
		ipCmd(t, "-n", n.NetNS, "route", "replace", "default", "via", routerAddr)
	}
	return w
}

// peerServer answers every TCP connection on addr:probePort inside ns with
// the address it came from, then echoes lines until the peer closes.
func peerServer(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	require.NoError(t, namespaces.DoPath(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(addr, fmt.Sprint(probePort)))
		return err
	}))
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				_, _ = c.Write([]byte(host + "\n"))
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := c.Write([]byte(sc.Text() + "\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// egressDeploy deploys network over the lab's nodes (hidden ones named)
// with egress on or off.
func egressDeploy(t *testing.T, l *lab.Lab, network, ipRange string, egress bool, hidden ...string) {
	t.Helper()
	path := deployment(t, network, ipRange, l.Nodes, hidden...)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var d map[string]any
	require.NoError(t, json.Unmarshal(b, &d))
	d["egress"] = egress
	b, err = json.Marshal(d)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	deploy(t, l, path)
}

// dialFrom opens a TCP connection from ns to dst:probePort.
func dialFrom(ns, dst string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := namespaces.DoPath(ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp", net.JoinHostPort(dst, fmt.Sprint(probePort)), timeout)
		return err
	})
	return c, err
}

// echo sends line on c and reports whether it came back within timeout.
func echo(c net.Conn, r *bufio.Reader, line string, timeout time.Duration) bool {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return false
	}
	got, err := r.ReadString('\n')
	return err == nil && strings.TrimSpace(got) == line
}

// TestEgress covers issue 15: an egress network's workloads reach the
// internet through their own node and nothing else; nothing reaches them
// from outside; turning egress off cuts open flows; a network without
// egress stays closed even when a workload routes out by itself.
func TestEgress(t *testing.T) {
	l := newLab(t, 2)
	w := newWorld(t, l)
	// The nodes' upstream resolver is an authoritative server on the
	// simulated internet.
	asked := authServer(t, w.inet, inetHost)
	l.Args = append(l.Args, "--dns-upstream", inetHost)
	for _, n := range l.Nodes {
		require.NoError(t, l.KillNode(n, syscall.SIGTERM))
		require.NoError(t, l.StartNode(context.Background(), n))
	}
	egressDeploy(t, l, "out", "10.80.0.0/16", true)
	egressDeploy(t, l, "shut", "10.81.0.0/16", false)

	type wl struct {
		node lab.Node
		a    attached
	}
	var outs, shuts []wl
	for _, n := range l.Nodes {
		outs = append(outs, wl{n, attach(t, n, "out", "o-"+n.ID)})
		shuts = append(shuts, wl{n, attach(t, n, "shut", "s-"+n.ID)})
	}
	peerServer(t, w.inet, inetHost)
	targets := map[string]*listener{
		"router":   listen(t, w.router, routerAddr, "router"),
		"lan host": listen(t, w.lan, lanHost, "lan host"),
	}
	for _, n := range l.Nodes {
		targets[n.ID] = listen(t, n.NetNS, n.Underlay.String(), n.ID)
	}
	for _, s := range shuts {
		targets[s.a.ipv4] = listen(t, s.a.ns, s.a.ipv4, "shut workload")
	}
	for _, o := range outs {
		listen(t, o.a.ns, o.a.ipv4, "out workload")
	}

	t.Run("status shows egress and the NAT address", func(t *testing.T) {
		for _, n := range l.Nodes {
			st := networkStatus(t, n, "out")
			assert.True(t, st.Egress, n.ID)
			assert.Equal(t, n.Underlay, st.EgressAddress, n.ID)
			assert.False(t, networkStatus(t, n, "shut").Egress, n.ID)
		}
	})

	t.Run("workloads reach the internet as their node", func(t *testing.T) {
		for _, o := range outs {
			assert.True(t, probeICMP(o.a.ns, "", inetHost, time.Second), "ping from %s", o.node.ID)
			assert.Equal(t, o.node.Underlay.String(), probeTCP(o.a.ns, inetHost, time.Second), "the host sees %s's address", o.node.ID)
			// The node has no global IPv6: no IPv6 way out (TestEgressIPv6 has one).
			out, err := inNS(o.a.ns, "ip", "-6", "route", "show", "default")
			assert.NoError(t, err)
			assert.Empty(t, strings.TrimSpace(out), "IPv6 default route on %s without global IPv6", o.node.ID)
			out, err = inNS(namespaces.Name(o.node.ID, "out"), "ip", "-6", "route", "show", "default")
			assert.NoError(t, err)
			assert.Empty(t, strings.TrimSpace(out), "IPv6 way out on %s without global IPv6", o.node.ID)
		}
		if t.Failed() { // what the node and the namespace hold, to see where it stops
			n := outs[0].node
			nsn := namespaces.Name(n.ID, "out")
			for _, c := range [][]string{
				{n.NetNS, "nft", "list", "ruleset"}, {n.NetNS, "ip", "route"}, {n.NetNS, "ip", "neigh"}, {n.NetNS, "ip", "-br", "link"},
				{n.NetNS, "sysctl", "-a", "--pattern", "forwarding|rp_filter"},
				{nsn, "ip", "route"}, {nsn, "ip", "neigh"}, {nsn, "ip", "-br", "addr"}, {nsn, "nft", "list", "ruleset"},
				{outs[0].a.ns, "ip", "route"},
			} {
				out, err := inNS(c[0], c[1:]...)
				t.Logf("%v: %v\n%s", c, err, out)
			}
		}
	})

	t.Run("internet names resolve through the node's upstream", func(t *testing.T) {
		for _, o := range outs {
			answer, status := dig(t, o.a.ns, "www.example.test", "A")
			assert.Equal(t, "NOERROR", status, o.node.ID)
			assert.Equal(t, inetHost, answer, o.node.ID)
			_, status = dig(t, o.a.ns, "nothing.example.test", "A")
			assert.Equal(t, "NXDOMAIN", status, o.node.ID)
			answer, _ = dig(t, o.a.ns, "o-"+o.node.ID+".out.internal", "A")
			assert.Equal(t, o.a.ipv4, answer, "the zone still answers itself")
			assert.True(t, asked.from(o.node.Underlay.String()), "the upstream was asked from %s's underlay", o.node.ID)
		}
		for _, s := range shuts {
			_, status := dig(t, s.a.ns, "www.example.test", "A")
			assert.Equal(t, "REFUSED", status, "no egress: %s", s.node.ID)
		}
	})

	t.Run("nothing but the internet", func(t *testing.T) {
		for _, o := range outs {
			for name, ln := range targets {
				dst := ln.tcp.Addr().(*net.TCPAddr).IP.String()
				assert.Empty(t, probeTCP(o.a.ns, dst, probeTimeout), "tcp %s -> %s (%s)", o.node.ID, name, dst)
				assert.False(t, probeICMP(o.a.ns, "", dst, probeTimeout), "icmp %s -> %s (%s)", o.node.ID, name, dst)
			}
		}
	})

	t.Run("nothing opens a connection to a workload", func(t *testing.T) {
		n := l.Nodes[0]
		st := networkStatus(t, n, "out")
		src := transferOf(t, n)
		o := outs[0].a.ipv4
		// The internet, routed at the node and at the transfer address.
		ipCmd(t, "-n", w.router, "route", "replace", "10.80.0.0/16", "via", n.Underlay.String())
		ipCmd(t, "-n", w.router, "route", "replace", src+"/32", "via", n.Underlay.String())
		ipCmd(t, "-n", w.inet, "route", "replace", "10.80.0.0/16", "via", "198.19.7.1")
		for _, dst := range []string{o, src} {
			assert.Empty(t, probeTCP(w.inet, dst, probeTimeout), "internet -> %s", dst)
			assert.False(t, probeICMP(w.inet, "", dst, probeTimeout), "internet ping -> %s", dst)
		}
		// The node itself, routing the workload through the egress veth.
		link := egressLinkOf(t, n)
		ipCmd(t, "-n", n.NetNS, "route", "replace", o+"/32", "via", src, "dev", link, "onlink")
		assert.Empty(t, probeTCP(n.NetNS, o, probeTimeout), "node -> workload")
		assert.False(t, probeICMP(n.NetNS, "", o, probeTimeout), "node ping -> workload")
		assert.Empty(t, probeTCP(n.NetNS, src, probeTimeout), "node -> transfer address")
		ipCmd(t, "-n", n.NetNS, "route", "del", o+"/32")
		assert.True(t, st.Egress)
	})

	t.Run("no egress stays closed with a default route", func(t *testing.T) {
		for _, s := range shuts {
			gw := networkStatus(t, s.node, "shut").Gateway.String()
			ipCmd(t, "-n", s.a.ns, "route", "replace", "default", "via", gw)
			assert.False(t, probeICMP(s.a.ns, "", inetHost, probeTimeout), "ping from %s", s.node.ID)
			assert.Empty(t, probeTCP(s.a.ns, inetHost, probeTimeout), "tcp from %s", s.node.ID)
		}
	})

	t.Run("egress off cuts a running flow at once", func(t *testing.T) {
		type flow struct {
			c net.Conn
			r *bufio.Reader
		}
		var flows []flow
		for _, o := range outs {
			c, err := dialFrom(o.a.ns, inetHost, time.Second)
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			r := bufio.NewReader(c)
			_, err = r.ReadString('\n') // the peer address line
			require.NoError(t, err)
			require.True(t, echo(c, r, "before", time.Second), "the flow works")
			flows = append(flows, flow{c, r})
		}
		transfer := map[string]string{}
		for _, n := range l.Nodes {
			transfer[n.ID] = transferOf(t, n)
			// The check below can fail: the node tracks the flow now.
			require.NotZero(t, trackedFrom(t, n.NetNS, transfer[n.ID]), "no tracked flow from %s on %s", transfer[n.ID], n.ID)
		}
		egressDeploy(t, l, "out", "10.80.0.0/16", false)
		for _, n := range l.Nodes {
			assert.Zero(t, trackedFrom(t, n.NetNS, transfer[n.ID]), "tracked flows from %s left on %s", transfer[n.ID], n.ID)
			assert.Zero(t, trackedFrom(t, namespaces.Name(n.ID, "out"), transfer[n.ID]), "tracked flows via %s left in the network on %s", transfer[n.ID], n.ID)
		}
		for i, f := range flows {
			assert.False(t, echo(f.c, f.r, "after", time.Second), "flow of %s still runs", outs[i].node.ID)
			assert.Empty(t, probeTCP(outs[i].a.ns, inetHost, probeTimeout), "new flow of %s", outs[i].node.ID)
		}
		for _, o := range outs {
			_, status := dig(t, o.a.ns, "www.example.test", "A")
			assert.Equal(t, "REFUSED", status, "egress off: %s", o.node.ID)
		}
		for _, n := range l.Nodes {
			assert.False(t, networkStatus(t, n, "out").Egress)
			out, err := inNS(n.NetNS, "nft", "list", "table", "inet", "znet-egress")
			assert.Error(t, err, "the underlay table outlived the last egress network: %s", out)
			out, _ = inNS(n.NetNS, "ip", "-br", "link")
			assert.NotContains(t, out, egressPrefix, "an egress veth is left in the underlay")
		}
	})
	t.Run("egress back on, kept by a restarted znetd, given to a new workload", func(t *testing.T) {
		egressDeploy(t, l, "out", "10.80.0.0/16", true)
		for _, o := range outs {
			assert.Equal(t, o.node.Underlay.String(), probeTCP(o.a.ns, inetHost, time.Second), "back on: %s", o.node.ID)
		}
		n := l.Nodes[0]
		require.NoError(t, l.KillNode(n, syscall.SIGTERM))
		require.NoError(t, l.StartNode(context.Background(), n))
		assert.Equal(t, n.Underlay.String(), probeTCP(outs[0].a.ns, inetHost, time.Second))
		out, err := inNS(n.NetNS, "nft", "list", "table", "inet", "znet-egress")
		require.NoError(t, err, out)
		assert.Equal(t, 1, strings.Count(out, "masquerade"), "one network, one rule:\n%s", out)
		// A workload attached now gets the default route and the way out.
		// Last: a new bridge port can change the bridge's MAC, and the
		// other workloads' cached gateway MAC with it, for seconds.
		late := attach(t, n, "out", "late")
		assert.Equal(t, n.Underlay.String(), probeTCP(late.ns, inetHost, time.Second))
	})
}

// trackedFrom counts the flows (of addr's family) in ns's conntrack table
// that left from addr or were translated to it.
func trackedFrom(t *testing.T, ns, addr string) int {
	t.Helper()
	h, err := namespaces.Open(ns)
	require.NoError(t, err)
	defer func() { _ = h.Close() }()
	nh, err := netlink.NewHandleAt(h)
	require.NoError(t, err)
	defer nh.Close()
	family := netlink.InetFamily(netlink.FAMILY_V4)
	if strings.Contains(addr, ":") {
		family = netlink.FAMILY_V6
	}
	flows, err := nh.ConntrackTableList(netlink.ConntrackTable, family)
	require.NoError(t, err)
	n := 0
	for _, f := range flows {
		if f.Forward.SrcIP.String() == addr || f.Reverse.DstIP.String() == addr {
			n++
		}
	}
	return n
}

// egressPrefix starts the name of every egress veth's underlay end.
const egressPrefix = "ze"

// egressLinkOf returns the underlay end of the one egress veth on node n.
func egressLinkOf(t *testing.T, n lab.Node) string {
	t.Helper()
	out, err := inNS(n.NetNS, "ip", "-br", "link")
	require.NoError(t, err, out)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], egressPrefix) {
			return strings.SplitN(f[0], "@", 2)[0]
		}
	}
	t.Fatalf("no egress veth on %s:\n%s", n.ID, out)
	return ""
}

// transferOf returns the transfer address the underlay routes to the one
// egress veth on node n.
func transferOf(t *testing.T, n lab.Node) string {
	t.Helper()
	out, err := inNS(n.NetNS, "ip", "-4", "route", "show", "dev", egressLinkOf(t, n))
	require.NoError(t, err, out)
	f := strings.Fields(out)
	require.NotEmpty(t, f, "no route to the egress veth")
	return f[0]
}

// askedLog is what an authoritative test server was asked, by source.
type askedLog struct {
	mu   sync.Mutex
	srcs map[string]bool
}

func (a *askedLog) from(src string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.srcs[src]
}

// authServer serves example.test on addr:53 (UDP) inside ns: www has an A
// record, every other name is NXDOMAIN. It records where queries came from.
func authServer(t *testing.T, ns, addr string) *askedLog {
	t.Helper()
	log := &askedLog{srcs: map[string]bool{}}
	var pc net.PacketConn
	require.NoError(t, namespaces.DoPath(ns, func() error {
		var err error
		pc, err = net.ListenPacket("udp", net.JoinHostPort(addr, "53"))
		return err
	}))
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		host, _, _ := net.SplitHostPort(w.RemoteAddr().String())
		log.mu.Lock()
		log.srcs[host] = true
		log.mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		if len(req.Question) == 1 && strings.EqualFold(req.Question[0].Name, "www.example.test.") && req.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR("www.example.test. 60 IN A " + inetHost)
			m.Answer = append(m.Answer, rr)
		} else {
			soa, _ := dns.NewRR("example.test. 60 IN SOA ns.example.test. h.example.test. 1 60 60 60 30")
			m.Ns = append(m.Ns, soa)
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return log
}
