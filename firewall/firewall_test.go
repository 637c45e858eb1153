package firewall

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/znet/znet/internal/testutil"
)

// A check is one probe of the lab and whether it must get through.
type check struct {
	name  string
	probe func(t *testing.T, l *lab) bool
	// allowed is the outcome with the rules applied; without rules every
	// probe gets through (the lab is checked to be fully open first, so a
	// probe that is blocked for another reason is caught).
	allowed bool
}

// spoofedUDP sends from a's spoofed address to dst and reports whether the
// sink at dst counted a new datagram from it.
func spoofedUDP(sink func(*lab) *udpSink, src, dst netip.Addr) func(t *testing.T, l *lab) bool {
	return func(t *testing.T, l *lab) bool {
		s := sink(l)
		before := s.count(src)
		l.a.sendUDP(t, src, netip.AddrPortFrom(dst, 9000))
		time.Sleep(300 * time.Millisecond)
		return s.count(src) > before
	}
}

// linkLocalOf returns the link-local address of n's link ifname, zoned for
// use from a neighbour's link zone.
func (n *testNS) linkLocalOf(t *testing.T, ifname, zone string) netip.Addr {
	t.Helper()
	addrs, err := n.h.AddrList(n.link(t, ifname), netlink.FAMILY_V6)
	require.NoError(t, err)
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.IsLinkLocalUnicast() {
			return ip.WithZone(zone)
		}
	}
	t.Fatalf("%s in %s has no link-local address", ifname, n.name)
	return netip.Addr{}
}

// isolationChecks are the lab's probes in order: plain pings come first,
// so the neighbour caches that the spoofed one-way probes rely on are
// fresh.
func isolationChecks(sinkB, sinkR func(*lab) *udpSink) []check {
	ping := func(from func(*lab) *testNS, src, dst netip.Addr) func(*testing.T, *lab) bool {
		return func(t *testing.T, l *lab) bool { return from(l).ping(t, src, dst) }
	}
	tcp := func(from func(*lab) *testNS, dst netip.Addr, port uint16) func(*testing.T, *lab) bool {
		return func(t *testing.T, l *lab) bool { return from(l).tcpOpen(t, netip.AddrPortFrom(dst, port)) }
	}
	udp := func(from func(*lab) *testNS, dst netip.Addr) func(*testing.T, *lab) bool {
		return func(t *testing.T, l *lab) bool {
			return from(l).udpEcho(t, netip.Addr{}, netip.AddrPortFrom(dst, 53))
		}
	}
	a := func(l *lab) *testNS { return l.a }
	b := func(l *lab) *testNS { return l.b }
	x := func(l *lab) *testNS { return l.x }
	r := func(l *lab) *testNS { return l.remote }
	none := netip.Addr{}
	pingLinkLocal := func(from, to func(*lab) *testNS, ifname string) func(*testing.T, *lab) bool {
		return func(t *testing.T, l *lab) bool {
			return from(l).ping(t, none, to(l).linkLocalOf(t, ifname, "eth0"))
		}
	}
	gateway := func(l *lab) *testNS { return l.net }
	return []check{
		{"a pings b v4", ping(a, none, b4), true},
		{"a pings b link-local", pingLinkLocal(a, b, "eth0"), true},
		{"a pings gateway link-local", pingLinkLocal(a, gateway, "br0"), true},
		{"a pings b v6", ping(a, none, b6), true},
		{"b pings a v4", ping(b, none, a4), true},
		{"b pings a v6", ping(b, none, a6), true},
		{"a pings gateway v4", ping(a, none, gw4), true},
		{"a pings gateway v6", ping(a, none, gw6), true},
		{"a pings remote v4", ping(a, none, remote4), true},
		{"a pings remote v6", ping(a, none, remote6), true},
		{"remote pings a v4", ping(r, none, a4), true},
		{"remote pings b v6", ping(r, none, b6), true},
		{"remote pings gateway v4", ping(r, none, gw4), true},
		{"a dns tcp gateway v4", tcp(a, gw4, 53), true},
		{"a dns tcp gateway v6", tcp(a, gw6, 53), true},
		{"a dns udp gateway v4", udp(a, gw4), true},
		{"a dns udp gateway v6", udp(a, gw6), true},
		{"remote dns tcp gateway v4", tcp(r, gw4, 53), true},
		{"remote dns udp gateway v4", udp(r, gw4), true},
		{"remote dns udp gateway v6", udp(r, gw6), true},
		{"a tcp 22 gateway v4", tcp(a, gw4, 22), false},
		{"a tcp 22 gateway v6", tcp(a, gw6, 22), false},
		{"remote tcp 22 gateway v4", tcp(r, gw4, 22), false},
		{"a spoofed udp to b v4", spoofedUDP(sinkB, spoof4, b4), false},
		{"a spoofed udp to b v6", spoofedUDP(sinkB, spoof6, b6), false},
		{"a spoofed udp to remote v4", spoofedUDP(sinkR, spoof4, remote4), false},
		{"a spoofed udp to remote v6", spoofedUDP(sinkR, spoof6, remote6), false},
		{"a spoofed ping b v4", ping(a, spoof4, b4), false},
		{"a spoofed ping remote v6", ping(a, spoof6, remote6), false},
		{"unknown port pings gateway v4", ping(x, none, gw4), false},
		{"unknown port pings gateway v6", ping(x, none, gw6), false},
		{"unknown port pings a v4", ping(x, none, a4), false},
		{"unknown port pings remote v6", ping(x, none, remote6), false},
		{"unknown port dns udp gateway v4", udp(x, gw4), false},
		{"b pings unknown port v4", ping(b, none, x4), false},
	}
}

func TestIsolation(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	l := newLab(t)
	l.net.listenTCP(t, 53)
	l.net.udpEchoServer(t, netip.AddrPortFrom(gw4, 53))
	l.net.udpEchoServer(t, netip.AddrPortFrom(gw6, 53))
	l.net.listenTCP(t, 22)
	sinks := map[*testNS]*udpSink{l.b: l.b.newUDPSink(t, 9000), l.remote: l.remote.newUDPSink(t, 9000)}
	checks := isolationChecks(
		func(l *lab) *udpSink { return sinks[l.b] },
		func(l *lab) *udpSink { return sinks[l.remote] },
	)

	phases := []struct {
		name  string
		setup func(t *testing.T)
		want  func(c check) bool
	}{
		{"without rules", func(*testing.T) {}, func(check) bool { return true }},
		{"with rules", func(t *testing.T) { mustApply(t, l.net, l.rules()) },
			func(c check) bool { return c.allowed }},
		{"after remove", func(t *testing.T) { require.NoError(t, Remove(l.net.ns)) },
			func(check) bool { return true }},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			ph.setup(t)
			for _, c := range checks {
				t.Run(c.name, func(t *testing.T) {
					assert.Equal(t, ph.want(c), c.probe(t, l))
				})
			}
		})
	}
}

// kernelChains lists the chains of znet's tables in ns with their number
// of rules, as "family chain rules".
func kernelChains(t *testing.T, n *testNS) []string {
	t.Helper()
	return kernelChainsOf(t, n, tableName)
}

// kernelChainsOf is kernelChains for the tables named table.
func kernelChainsOf(t *testing.T, n *testNS, table string) []string {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(n.ns)))
	require.NoError(t, err)
	chains, err := c.ListChains()
	require.NoError(t, err)
	var out []string
	for _, ch := range chains {
		if ch.Table.Name != table {
			continue
		}
		rules, err := c.GetRules(ch.Table, ch)
		require.NoError(t, err)
		out = append(out, familyName(ch.Table.Family)+" "+ch.Name+" "+strconv.Itoa(len(rules)))
	}
	return out
}

// wantChains is kernelChains as build says it should be.
func wantChains(r Rules) []string {
	var out []string
	for _, tb := range build(r.normalized()) {
		for _, ch := range tb.chains {
			out = append(out, familyName(tb.family)+" "+ch.name+" "+strconv.Itoa(len(ch.rules)))
		}
	}
	return out
}

func TestApplyAndRemoveTwice(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newNS(t, "zt-fw-"+testutil.RandomHex(t, 4))
	r := Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{
		{IfName: "veth-a", IPv4: a4, IPv6: a6},
		{IfName: "veth-b", IPv4: b4},
	}}
	smaller := Rules{Bridge: "br0", Overlay: "wg0", Ports: r.Ports[1:]}
	mustApply(t, n, smaller)
	// Someone else's table, which Apply and Remove must leave alone.
	c, err := nftables.New(nftables.WithNetNSFd(int(n.ns)))
	require.NoError(t, err)
	other := c.AddTable(&nftables.Table{Name: "other", Family: nftables.TableFamilyINet})
	c.AddChain(&nftables.Chain{Name: "keep", Table: other})
	require.NoError(t, c.Flush())

	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"remove first rules", func() error { return Remove(n.ns) }, nil},
		{"remove without tables", func() error { return Remove(n.ns) }, nil},
		{"apply", func() error { return Apply(n.ns, r) }, wantChains(r)},
		{"apply again", func() error { return Apply(n.ns, r) }, wantChains(r)},
		{"apply fewer ports", func() error { return Apply(n.ns, smaller) }, wantChains(smaller)},
		{"remove", func() error { return Remove(n.ns) }, nil},
		{"remove again", func() error { return Remove(n.ns) }, nil},
		{"apply after remove", func() error { return Apply(n.ns, r) }, wantChains(r)},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			require.NoError(t, s.do())
			assert.ElementsMatch(t, s.want, kernelChains(t, n))
		})
	}
	assert.Len(t, wantChains(r), 4+1+2, "inet raw/input/forward/output, bridge prerouting, one chain per port")
	kept, err := c.ListChain(other, "keep")
	require.NoError(t, err, "the other table survives")
	assert.Equal(t, "keep", kept.Name)
}

// TestKernelReadsRules checks, through nft's own decoding of what the
// kernel holds, that the expressions mean what Render says.
func TestKernelReadsRules(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (apt-get install nftables)")
	}
	n := newNS(t, "zt-fw-"+testutil.RandomHex(t, 4))
	r := Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{{IfName: "veth-a", IPv4: a4, IPv6: a6}, {IfName: "veth-b"}},
		AccessPeers: []netip.Addr{remote4, remote6, x4}}
	mustApply(t, n, r)
	out, err := exec.Command("ip", "netns", "exec", n.name, "nft", "list", "ruleset").CombinedOutput()
	require.NoError(t, err, "%s", out)
	listing := string(out)
	t.Logf("nft list ruleset:\n%s", listing)
	check := exec.Command("ip", "netns", "exec", n.name, "nft", "--check", "-f", "-")
	check.Stdin = strings.NewReader(listing)
	out, err = check.CombinedOutput()
	require.NoError(t, err, "nft reads its listing back (sets and maps included): %s", out)

	// nft hides dependencies it can infer (ether type before ip saddr) and
	// names priorities, so each rule is matched by what nft prints.
	want := []string{
		`table inet znet {`,
		"set access4 {\n\t\ttype ipv4_addr\n\t\telements = { 10.20.1.9, 10.20.2.2 }\n\t}",
		"set access6 {\n\t\ttype ipv6_addr\n\t\telements = { fd00:20:2::2 }\n\t}",
		"type filter hook prerouting priority raw; policy accept;\n" +
			"\t\tip saddr @access4 return\n\t\tip daddr @access4 return\n" +
			"\t\tip6 saddr @access6 return\n\t\tip6 daddr @access6 return\n" +
			"\t\tfib daddr type local return\n",
		`type filter hook input priority filter; policy drop;`,
		`iifname "lo" accept`,
		`ct state established,related accept`,
		`ct state invalid drop`,
		`iifname "br0" meta l4proto icmp accept`,
		`iifname "wg0" meta l4proto ipv6-icmp accept`,
		`iifname "br0" udp dport 53 accept`,
		`iifname "wg0" tcp dport 53 accept`,
		`type filter hook forward priority filter; policy drop;`,
		"tcp flags syn tcp option maxseg size set rt mtu\n" +
			"\t\tct state invalid drop\n\t\tct state established,related accept\n" +
			"\t\toifname \"wg0\" ip daddr @access4 drop\n\t\toifname \"wg0\" ip6 daddr @access6 drop\n" +
			"\t\tiifname \"br0\" oifname \"br0\" accept\n",
		`iifname "br0" oifname "br0" accept`,
		`iifname "br0" oifname "wg0" accept`,
		`iifname "wg0" oifname "br0" accept`,
		`iifname "wg0" oifname "wg0" accept`,
		`type filter hook output priority filter; policy accept;`,
		`table bridge znet {`,
		"map ports {\n\t\ttype ifname : verdict\n" +
			"\t\telements = { \"veth-a\" : jump port-veth-a,\n\t\t\t     \"veth-b\" : jump port-veth-b }\n\t}",
		"type filter hook prerouting priority filter; policy drop;\n\t\tiifname vmap @ports\n\t}",
		`chain port-veth-a {`,
		`ip saddr 10.20.1.2 accept`,
		`arp saddr ip 10.20.1.2 accept`,
		`icmpv6 type nd-router-advert drop`,
		`icmpv6 type nd-redirect drop`,
		`ip6 saddr fd00:20:1::2 accept`,
		`ip6 saddr fe80::/10 accept`,
		`ip6 saddr :: meta l4proto ipv6-icmp accept`,
	}
	for _, w := range want {
		assert.Contains(t, listing, w)
	}
	// The neighbour advertisement rule: nft shows the target raw, read at
	// transport offset 8 (64 bits), 16 bytes, masked for fe80::/10.
	assert.Contains(t, listing, "icmpv6 type nd-neighbor-advert "+
		"@th,64,128 != 0xfd000020000100000000000000000002 "+
		"@th,64,128 & 0xffc00000000000000000000000000000 != 0xfe800000000000000000000000000000 drop")
}

// TestApplyManyPorts applies the rules of a network with 500 workloads: the
// whole batch goes out in one netlink message, which once overflowed the
// socket's buffers at 59 workloads (EMSGSIZE) and at a dozen (ENOBUFS).
func TestApplyManyPorts(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newNS(t, "zt-fw-"+testutil.RandomHex(t, 4))
	r := Rules{Bridge: "znbr", Overlay: "zn0"}
	base := netip.MustParseAddr("10.20.0.2")
	base6 := netip.MustParseAddr("fd00:20::2")
	for i := range 500 {
		r.Ports = append(r.Ports, Port{IfName: fmt.Sprintf("vw%08d", i), IPv4: base, IPv6: base6})
		base, base6 = base.Next(), base6.Next()
	}
	mustApply(t, n, r)
	mustApply(t, n, r) // and replaced as a whole again
	assert.Len(t, kernelChains(t, n), len(wantChains(r)))
}

// TestAccessPeersAreClients treats the remote end of the overlay as an
// access peer: it still reaches workloads and the gateway, and gets the
// answers, but nothing behind the node opens a connection to it.
func TestAccessPeersAreClients(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	l := newLab(t)
	l.net.listenTCP(t, 53)
	l.b.listenTCP(t, 80)
	l.remote.listenTCP(t, 22)
	checks := []struct {
		name  string
		probe func(*testing.T) bool
		want  bool
	}{
		{"access peer pings a v4", func(t *testing.T) bool { return l.remote.ping(t, netip.Addr{}, a4) }, true},
		{"access peer pings a v6", func(t *testing.T) bool { return l.remote.ping(t, netip.Addr{}, a6) }, true},
		{"access peer opens tcp to b", func(t *testing.T) bool { return l.remote.tcpOpen(t, netip.AddrPortFrom(b4, 80)) }, true},
		{"access peer asks the gateway's dns over tcp", func(t *testing.T) bool { return l.remote.tcpOpen(t, netip.AddrPortFrom(gw4, 53)) }, true},
		{"a pings the access peer v4", func(t *testing.T) bool { return l.a.ping(t, netip.Addr{}, remote4) }, false},
		{"a pings the access peer v6", func(t *testing.T) bool { return l.a.ping(t, netip.Addr{}, remote6) }, false},
		{"b opens tcp to the access peer", func(t *testing.T) bool { return l.b.tcpOpen(t, netip.AddrPortFrom(remote4, 22)) }, false},
	}
	// Without access peers every probe passes, so a blocked one below is
	// blocked by the access peer rules.
	mustApply(t, l.net, l.rules())
	for _, c := range checks {
		t.Run("as a member/"+c.name, func(t *testing.T) { assert.True(t, c.probe(t)) })
	}
	r := l.rules()
	r.AccessPeers = []netip.Addr{remote4, remote6}
	mustApply(t, l.net, r)
	for _, c := range checks {
		t.Run("as an access peer/"+c.name, func(t *testing.T) { assert.Equal(t, c.want, c.probe(t)) })
	}
}
