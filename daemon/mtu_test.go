package daemon

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/overlay"
	"github.com/znet/znet/peers"
	"github.com/znet/znet/spec"
)

func TestDerivedMTU(t *testing.T) {
	v4 := func(mtu int) underlayPath { return underlayPath{mtu: mtu} }
	v6 := func(mtu int) underlayPath { return underlayPath{mtu: mtu, ipv6: true} }
	tests := []struct {
		name  string
		paths []underlayPath
		want  int
	}{
		{"no paths: the default", nil, spec.DefaultMTU},
		{"IPv4 on 1500", []underlayPath{v4(1500)}, 1440},
		{"IPv6 on 1500", []underlayPath{v6(1500)}, 1420},
		{"cloud VPC, IPv4", []underlayPath{v4(1460)}, 1400},
		{"IPv4 on 1380", []underlayPath{v4(1380)}, 1320},
		{"IPv6 on 1380", []underlayPath{v6(1380)}, 1300},
		{"the smallest path wins", []underlayPath{v4(1500), v4(1380), v4(9000)}, 1320},
		{"each path with its own overhead", []underlayPath{v4(1400), v6(1420)}, 1340},
		{"never below 1280 (IPv4)", []underlayPath{v4(1300)}, spec.MinMTU},
		{"never below 1280 (IPv6)", []underlayPath{v6(1280)}, spec.MinMTU},
		{"jumbo frames", []underlayPath{v4(9000)}, 8940},
		{"never above the spec's maximum", []underlayPath{v4(65536)}, spec.MaxMTU},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, derivedMTU(tt.paths))
		})
	}
}

// underlayLink gives node n's underlay a link ul0 with mtu and addrs, and
// the routes given (on that link). It is a veth whose other end stays
// there too (without addresses): the kernel may have no dummy links.
func (n *testNode) underlayLink(t testing.TB, mtu int, addrs []string, routes ...*netlink.Route) {
	t.Helper()
	h, err := netlink.NewHandleAt(n.underlay)
	require.NoError(t, err)
	defer h.Close()
	require.NoError(t, h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ul0", MTU: mtu}, PeerName: "ul0p", PeerMTU: uint32(mtu)}))
	l, err := h.LinkByName("ul0")
	require.NoError(t, err)
	for _, a := range addrs {
		p := mustPrefix(a)
		require.NoError(t, h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(p), Flags: 0x80 /* IFA_F_NODAD */}))
	}
	require.NoError(t, h.LinkSetUp(l))
	for _, r := range routes {
		r.LinkIndex = l.Attrs().Index
		require.NoError(t, h.RouteAdd(r), "route %v", r)
	}
}

// TestUnderlayPaths reads route MTUs in the node's underlay: a route's own
// MTU before its device's, and without endpoints the default route, else
// the interfaces.
func TestUnderlayPaths(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newTestNode(t)
	peer := func(addr string) peers.Peer {
		return peers.Peer{Name: addr, Endpoint: netip.AddrPortFrom(mustAddr(addr), 51820)}
	}

	step(t, "nothing in the underlay: no paths, the default MTU", func(t *testing.T) {
		paths, err := n.d.underlayPaths(nil)
		require.NoError(t, err)
		assert.Empty(t, paths)
	})
	n.underlayLink(t, 1380, []string{"198.18.0.1/24", "fd18::1/64"},
		&netlink.Route{Dst: ipNet(mustPrefix("198.18.1.0/24")), MTU: 1300})

	step(t, "no endpoints: the interfaces, as IPv6", func(t *testing.T) {
		paths, err := n.d.underlayPaths([]peers.Peer{{Name: "hidden"}})
		require.NoError(t, err)
		assert.Equal(t, []underlayPath{{mtu: 1380, ipv6: true}}, paths)
	})
	step(t, "endpoints: the route towards each, once", func(t *testing.T) {
		paths, err := n.d.underlayPaths([]peers.Peer{peer("198.18.0.2"), peer("198.18.0.2"), peer("198.18.1.5"), peer("fd18::2")})
		require.NoError(t, err)
		assert.Equal(t, []underlayPath{{mtu: 1380}, {mtu: 1300}, {mtu: 1380, ipv6: true}}, paths)
		assert.Equal(t, spec.MinMTU, derivedMTU(paths), "1300 - 60 is below the floor")
	})
	step(t, "an endpoint without a route is an error", func(t *testing.T) {
		_, err := n.d.underlayPaths([]peers.Peer{peer("203.0.113.9")})
		require.Error(t, err)
		assert.Equal(t, spec.DefaultMTU, n.d.overlayMTU(&spec.Spec{Name: "x"}, []peers.Peer{peer("203.0.113.9")}))
	})
	step(t, "no endpoints with a default route: the default route", func(t *testing.T) {
		h, err := netlink.NewHandleAt(n.underlay)
		require.NoError(t, err)
		defer h.Close()
		l, err := h.LinkByName("ul0")
		require.NoError(t, err)
		require.NoError(t, h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP("198.18.0.254"), MTU: 1360}))
		paths, err := n.d.underlayPaths(nil)
		require.NoError(t, err)
		assert.Equal(t, []underlayPath{{mtu: 1360}}, paths)
	})
	step(t, "a spec's own MTU is not looked up", func(t *testing.T) {
		assert.Equal(t, 1400, n.d.overlayMTU(&spec.Spec{MTU: 1400}, []peers.Peer{peer("203.0.113.9")}))
	})
}

// TestMTUFollowsGenerations derives the MTU from a 1380-byte underlay,
// then changes it in later generations with a workload attached: the
// device, the bridge and both ends of the workload's veth follow.
func TestMTUFollowsGenerations(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.use("shop")
	n.underlayLink(t, 1380, []string{"198.18.0.1/24"})
	self := spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24"), Endpoint: "198.18.0.1:40000"}
	other := spec.Node{ID: "other", Subnet: mustPrefix("10.20.2.0/24"), PublicKey: publicKey(t), Endpoint: "198.18.0.2:40007"}
	wg := overlay.IfName(n.id, "shop")
	host := hostIfName("web")
	mtus := func(t *testing.T, wl string) []int {
		t.Helper()
		nv, wv := view(t, n.nsName("shop")), view(t, wl)
		return []int{nv.links[wg].mtu, nv.links[bridgeName].mtu, nv.links[host].mtu, wv.links["znet0"].mtu, nv.links[tapIfName("vm")].mtu}
	}

	_, err := n.d.Apply(ctx, specOf("shop", 1, self, other))
	require.NoError(t, err)
	ws := n.newWorkloadNS(t)
	_, err = n.d.Attach(ctx, "shop", api.AttachRequest{Name: "web", NetNS: "/run/netns/" + ws})
	require.NoError(t, err)
	vm, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "vm", Tap: true})
	require.NoError(t, err)
	step(t, "derived: 1380 less 60 for an IPv4 endpoint", func(t *testing.T) {
		assert.Equal(t, []int{1320, 1320, 1320, 1320, 1320}, mtus(t, ws), "device, bridge, both veth ends, tap")
		assert.Equal(t, 1320, vm.MTU, "the guest is told the derived MTU")
		st, err := n.d.Status(ctx, "shop")
		require.NoError(t, err)
		require.Len(t, st, 1)
		assert.Equal(t, 1320, st[0].MTU)
	})
	step(t, "a generation with an explicit MTU changes it under the workload", func(t *testing.T) {
		s := specOf("shop", 2, self, other)
		s.MTU = 1300
		_, err := n.d.Apply(ctx, s)
		require.NoError(t, err)
		assert.Equal(t, []int{1300, 1300, 1300, 1300, 1300}, mtus(t, ws))
	})
	step(t, "and back to the derived one", func(t *testing.T) {
		_, err := n.d.Apply(ctx, specOf("shop", 3, self, other))
		require.NoError(t, err)
		assert.Equal(t, []int{1320, 1320, 1320, 1320, 1320}, mtus(t, ws))
	})
	step(t, "a restarted daemon derives the same", func(t *testing.T) {
		n.restart(t)
		require.NoError(t, n.d.Recover(ctx))
		assert.Equal(t, []int{1320, 1320, 1320, 1320, 1320}, mtus(t, ws))
	})
}

// TestStatusReportsTooBig shows the data plane's EMSGSIZE drops in status,
// as a problem only while they are recent.
func TestStatusReportsTooBig(t *testing.T) {
	u := newUnit(t, "node1")
	dev := overlay.Device{IfName: "zn0"}
	now := time.Now()
	st := api.NetworkStatus{Name: "shop", MTU: 1420}

	assert.Empty(t, u.d.mtuStatus(&st, dev, now), "no drops, no problem")
	assert.Zero(t, st.TooBigDrops)

	u.backend.SetSendDrops("zn0", overlay.SendDrops{TooBig: 42, LastTooBig: now.Add(-10 * time.Second)})
	problem := u.d.mtuStatus(&st, dev, now)
	assert.Contains(t, problem, "underlay refused 42 packets as too big (EMSGSIZE), the last 10s ago")
	assert.Equal(t, uint64(42), st.TooBigDrops)
	assert.Equal(t, now.Add(-10*time.Second), st.LastTooBigDrop)

	u.backend.SetSendDrops("zn0", overlay.SendDrops{TooBig: 42, LastTooBig: now.Add(-time.Hour)})
	assert.Empty(t, u.d.mtuStatus(&st, dev, now), "an old count is history")
	assert.Equal(t, uint64(42), st.TooBigDrops, "but still shown")
}

// BenchmarkUnderlayPaths measures the derivation for a network of a
// thousand members with endpoints, which every apply pays.
func BenchmarkUnderlayPaths(b *testing.B) {
	testutil.SkipUnlessRoot(b)
	ul := "zt-dm-" + testutil.RandomHex(b, 4) + "-ul"
	require.NoError(b, namespaces.Create(ul))
	b.Cleanup(func() { _ = namespaces.Delete(ul) })
	h, err := namespaces.Open(ul)
	require.NoError(b, err)
	b.Cleanup(func() { _ = h.Close() })
	n := &testNode{underlay: h}
	n.underlayLink(b, 1380, []string{"198.18.0.1/16"})
	d := &Daemon{underlay: h}
	desired := make([]peers.Peer, 1000)
	for i := range desired {
		desired[i] = peers.Peer{Endpoint: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(2 + i%250)}), 51820)}
	}
	b.ResetTimer()
	for b.Loop() {
		paths, err := d.underlayPaths(desired)
		require.NoError(b, err)
		require.Len(b, paths, 1000)
	}
}
