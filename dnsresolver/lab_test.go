package dnsresolver

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/internal/testutil/nstest"
	"github.com/znet/znet/namespaces"
)

// testNode is a simulated member: a namespace whose link mesh0 stands in for
// the WireGuard mesh and carries the node's gateway addresses.
type testNode struct {
	id       string
	ns       string         // namespace name
	h        netns.NsHandle // owned by createNS
	gw4, gw6 netip.Addr
}

// newLab makes two nodes, node1 (10.20.1.1, fd3c:9a1e:77b2:1::1) and node2
// (10.20.2.1, fd3c:9a1e:77b2:2::1), in fresh namespaces joined by a veth
// pair, each routing the other's subnets over it. Everything goes in
// t.Cleanup.
func newLab(t *testing.T) (n1, n2 *testNode) {
	t.Helper()
	prefix := "zt-dns-" + testutil.RandomHex(t, 4)
	nodes := make([]*testNode, 2)
	handles := make([]*netlink.Handle, 2)
	for i := range nodes {
		n := &testNode{
			id:  fmt.Sprintf("node%d", i+1),
			ns:  fmt.Sprintf("%s-%d", prefix, i+1),
			gw4: netip.AddrFrom4([4]byte{10, 20, byte(i + 1), 1}),
			gw6: netip.MustParseAddr(fmt.Sprintf("fd3c:9a1e:77b2:%d::1", i+1)),
		}
		n.h = nstest.CreateNS(t, n.ns)
		h, err := netlink.NewHandleAt(n.h)
		require.NoError(t, err)
		t.Cleanup(h.Close)
		nodes[i], handles[i] = n, h
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "mesh0"},
		PeerName:      "mesh0",
		PeerNamespace: netlink.NsFd(int(nodes[1].h)),
	}
	require.NoError(t, handles[0].LinkAdd(veth))
	for i, n := range nodes {
		h, other := handles[i], nodes[1-i]
		l, err := h.LinkByName("mesh0")
		require.NoError(t, err)
		for _, a := range []netip.Prefix{netip.PrefixFrom(n.gw4, 24), netip.PrefixFrom(n.gw6, 64)} {
			require.NoError(t, h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(a), Flags: unix.IFA_F_NODAD}))
		}
		require.NoError(t, h.LinkSetUp(l))
		lo, err := h.LinkByName("lo")
		require.NoError(t, err)
		require.NoError(t, h.LinkSetUp(lo))
		for _, dst := range []netip.Prefix{netip.PrefixFrom(other.gw4, 24).Masked(), netip.PrefixFrom(other.gw6, 64).Masked()} {
			require.NoError(t, h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(dst), Scope: netlink.SCOPE_LINK}))
		}
	}
	// A veth carries nothing until the kernel saw its carrier come up
	// (linkwatch may take a second), and an IPv6 address is only usable
	// (its local route in, its solicited-node group joined) once the
	// addrconf work for it ran after that: wait, so that no test starts
	// with packets stuck in neighbour discovery.
	for i, h := range handles {
		n := nodes[i]
		require.Eventually(t, func() bool {
			l, err := h.LinkByName("mesh0")
			if err != nil || l.Attrs().OperState != netlink.OperUp {
				return false
			}
			rs, err := h.RouteGet(n.gw6.AsSlice())
			return err == nil && len(rs) > 0 && rs[0].Type == unix.RTN_LOCAL
		}, 5*time.Second, 5*time.Millisecond, "mesh0 of %s up with its IPv6 address", n.id)
	}
	return nodes[0], nodes[1]
}

// ipNet converts p for netlink.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// member returns n as a member of other nodes' configs, with its /24 and
// /64 as its subnets.
func (n *testNode) member() Member {
	return Member{
		ID: n.id, Gateway4: n.gw4, Gateway6: n.gw6,
		Subnet4: netip.PrefixFrom(n.gw4, 24).Masked(), Subnet6: netip.PrefixFrom(n.gw6, 64).Masked(),
	}
}

// config returns n's config in network shop with members and local records.
func (n *testNode) config(members []Member, local ...Record) Config {
	return Config{
		Network:   "shop",
		NodeID:    n.id,
		Gateway4:  n.gw4,
		Gateway6:  n.gw6,
		IPRange:   netip.MustParsePrefix("10.20.0.0/16"),
		IPv6Range: netip.MustParsePrefix("fd3c:9a1e:77b2::/48"),
		Members:   members,
		Local:     local,
	}
}

// do runs fn on a thread in n's namespace.
func (n *testNode) do(fn func() error) error { return namespaces.Do(n.h, fn) }

// start runs a resolver for cfg in n's namespace that polls every
// testPoll, closed in t.Cleanup.
func (n *testNode) start(t *testing.T, cfg Config) *Resolver {
	t.Helper()
	return n.startPolling(t, cfg, testPoll)
}

// startPolling is start with poll as Options.PollInterval (0: the
// default).
func (n *testNode) startPolling(t *testing.T, cfg Config, poll time.Duration) *Resolver {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", n.id)
	r, err := NewWithOptions(cfg, log, Options{Do: n.do, PollInterval: poll})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, r.Close()) })
	return r
}

// testPoll is the poll interval of the test resolvers.
const testPoll = 300 * time.Millisecond

// query asks the resolver at server:53 for name and qtype from inside n's
// namespace and returns the answer and how long it took.
func (n *testNode) query(t *testing.T, server netip.Addr, name string, qtype uint16, tcp bool) (*dns.Msg, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := n.exchange(server, name, qtype, tcp)
	took := time.Since(start)
	require.NoError(t, err, "asking %s for %s %s", server, name, dns.TypeToString[qtype])
	return resp, took
}

// exchange asks the resolver at server:53 for name and qtype from inside
// n's namespace.
func (n *testNode) exchange(server netip.Addr, name string, qtype uint16, tcp bool) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	if tcp {
		c.Net = "tcp"
	}
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	var resp *dns.Msg
	err := n.do(func() error {
		var err error
		resp, _, err = c.Exchange(q, netip.AddrPortFrom(server, 53).String())
		return err
	})
	return resp, err
}

// lookup returns what n's own resolver answers for name and qtype, as
// rendered answer records, or the rcode if it is not NOERROR.
func (n *testNode) lookup(t *testing.T, name string, qtype uint16) []string {
	t.Helper()
	m, _ := n.query(t, n.gw4, name, qtype, false)
	if m.Rcode != dns.RcodeSuccess {
		return []string{dns.RcodeToString[m.Rcode]}
	}
	return render(m.Answer)
}

// waitFor polls n's resolver until it answers name and qtype with want
// (rendered records, or an rcode) and returns how long that took; it fails
// t after timeout (0: asks once).
func (n *testNode) waitFor(t *testing.T, timeout time.Duration, name string, qtype uint16, want ...string) time.Duration {
	t.Helper()
	start := time.Now()
	var got []string
	for {
		if got = n.lookup(t, name, qtype); assert.ObjectsAreEqual(want, got) {
			return time.Since(start)
		}
		if time.Since(start) >= timeout {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.Equal(t, want, got, "%s on %s after %s", name, n.id, timeout)
	return 0
}

// removeAddr removes address a from n's mesh0, so that packets to it
// vanish (nobody answers neighbour discovery).
func (n *testNode) removeAddr(t *testing.T, a netip.Prefix) {
	t.Helper()
	h, err := netlink.NewHandleAt(n.h)
	require.NoError(t, err)
	defer h.Close()
	l, err := h.LinkByName("mesh0")
	require.NoError(t, err)
	require.NoError(t, h.AddrDel(l, &netlink.Addr{IPNet: ipNet(a)}))
}

// addAddr adds address a to n's loopback.
func (n *testNode) addAddr(t *testing.T, a netip.Prefix) {
	t.Helper()
	h, err := netlink.NewHandleAt(n.h)
	require.NoError(t, err)
	defer h.Close()
	l, err := h.LinkByName("lo")
	require.NoError(t, err)
	require.NoError(t, h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(a), Flags: unix.IFA_F_NODAD}))
}

// rec returns a record with an IPv4 and an IPv6 address on subnet x.
func rec(name string, x, host byte) Record {
	return Record{
		Name: name,
		IPv4: netip.AddrFrom4([4]byte{10, 20, x, host}),
		IPv6: netip.MustParseAddr(fmt.Sprintf("fd3c:9a1e:77b2:%d::%x", x, host)),
	}
}
