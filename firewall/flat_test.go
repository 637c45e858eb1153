package firewall

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
)

// manyRules returns rules with n workload ports and n access peers of
// each family.
func manyRules(n int) Rules {
	r := Rules{Bridge: "znbr", Overlay: "zn0"}
	v4, v6 := netip.MustParseAddr("10.20.0.2"), netip.MustParseAddr("fd00:20::2")
	p4, p6 := netip.MustParseAddr("10.30.0.2"), netip.MustParseAddr("fd00:30::2")
	for i := range n {
		r.Ports = append(r.Ports, Port{IfName: fmt.Sprintf("vw%08d", i), IPv4: v4, IPv6: v6})
		r.AccessPeers = append(r.AccessPeers, p4, p6)
		v4, v6, p4, p6 = v4.Next(), v6.Next(), p4.Next(), p6.Next()
	}
	return r
}

// hookedRules returns the number of rules of each base chain (the chains
// every packet goes through), as "family chain rules".
func hookedRules(r Rules) []string {
	var out []string
	for _, tb := range build(r.normalized()) {
		for _, ch := range tb.chains {
			if ch.base() {
				out = append(out, fmt.Sprintf("%s %s %d", familyName(tb.family), ch.name, len(ch.rules)))
			}
		}
	}
	return out
}

// TestRuleCountIsFlat checks that the chains a packet walks have as many
// rules with one workload port and one access peer of each family as with
// 200: ports and peers are found by set lookups, not rule by rule. Only
// the port chains, one per port, grow, and a frame walks one of them.
func TestRuleCountIsFlat(t *testing.T) {
	one, many := manyRules(1), manyRules(200)
	assert.Equal(t, hookedRules(one), hookedRules(many))
	assert.Len(t, wantChains(many), len(wantChains(one))+199, "one more chain per port, nothing else")
}

// TestRuleCountIsFlatInKernel checks the same on what the kernel holds:
// the hooked chains' rules do not grow, the sets and the map do.
func TestRuleCountIsFlatInKernel(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newNS(t, "zt-fw-"+testutil.RandomHex(t, 4))
	hooked := func() []string {
		var out []string
		for _, c := range kernelChains(t, n) {
			if !strings.Contains(c, " port-") {
				out = append(out, c)
			}
		}
		return out
	}
	mustApply(t, n, manyRules(1))
	before := hooked()
	mustApply(t, n, manyRules(200))
	assert.Equal(t, before, hooked())
	assert.ElementsMatch(t, []string{"inet access4 200", "inet access6 200", "bridge ports 200"}, kernelSets(t, n))
}

// TestLookupsDecide checks by traffic, with three known ports and three
// access peers, that the set lookups decide as the rules they replace: a
// frame from a port not in the map is dropped, each known port's frames
// go through its own chain (a spoofed source from the second port is
// dropped, its own passes), access peers' packets stay tracked and
// nothing opens a connection to any of them, while an address behind the
// overlay that is not an access peer is reached untracked.
func TestLookupsDecide(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	l := newLab(t)
	y := newNS(t, strings.TrimSuffix(l.net.name, "net")+"y")
	y4, y6 := netip.MustParseAddr("10.20.1.4"), netip.MustParseAddr("fd00:20:1::4")
	l.net.veth(t, "veth-y", "br0", y, "eth0")
	y.addAddrs(t, "eth0", y4.String()+"/24", y6.String()+"/64")
	y.addRoute(t, "10.20.2.0/24", gw4.String())
	bSpoof := netip.MustParseAddr("10.20.1.98")
	l.b.addAddrs(t, "eth0", bSpoof.String()+"/24")
	member := netip.MustParseAddr("10.20.2.4") // behind the overlay, not an access peer
	l.remote.addAddrs(t, "eth0", accessPeer4.String()+"/24", member.String()+"/24")
	l.remote.listenTCP(t, 22)
	sink := l.remote.newUDPSink(t, 9000)

	r := l.rules()
	r.Ports = append(r.Ports, Port{IfName: "veth-y", IPv4: y4, IPv6: y6})
	r.AccessPeers = []netip.Addr{remote4, accessPeer4, remote6}
	mustApply(t, l.net, r)
	require.Len(t, r.Ports, 3)

	t.Run("unknown port", func(t *testing.T) {
		assert.False(t, l.x.ping(t, netip.Addr{}, gw4), "to the gateway")
		assert.False(t, l.x.ping(t, netip.Addr{}, member), "through the overlay")
	})
	for _, w := range []struct {
		name string
		ns   *testNS
		src  netip.Addr
	}{{"a", l.a, a4}, {"b", l.b, b4}, {"y", y, y4}} {
		t.Run("known port "+w.name, func(t *testing.T) {
			assert.True(t, w.ns.ping(t, w.src, member), "through the overlay")
			assert.True(t, w.ns.ping(t, w.src, gw4), "to the gateway")
		})
	}
	t.Run("second port's own chain", func(t *testing.T) {
		udp := func(src netip.Addr) int {
			before := sink.count(src)
			l.b.sendUDP(t, src, netip.AddrPortFrom(member, 9000))
			time.Sleep(300 * time.Millisecond)
			return sink.count(src) - before
		}
		assert.Positive(t, udp(b4), "its own address passes")
		assert.Zero(t, udp(bSpoof), "a spoofed one is dropped")
	})
	t.Run("access peers", func(t *testing.T) {
		for _, p := range []netip.Addr{remote4, accessPeer4, remote6} {
			dst := a4
			if p.Is6() {
				dst = a6
			}
			assert.True(t, l.remote.ping(t, p, dst), "%s reaches a", p)
			assert.False(t, l.a.ping(t, netip.Addr{}, p), "a cannot reach %s", p)
			assert.False(t, y.tcpOpen(t, netip.AddrPortFrom(p, 22)), "y cannot open tcp to %s", p)
		}
		assert.True(t, l.net.tracked(t, remote4.String(), a4.String()), "from an access peer: tracked")
		assert.True(t, l.net.tracked(t, accessPeer4.String(), a4.String()), "from another: tracked")
		assert.False(t, l.net.tracked(t, a4.String(), member.String()), "to a member: not tracked")
	})
}
