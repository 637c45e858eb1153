package daemon

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
)

// underlayState lists the egress veth ends in n's underlay and the chains
// of znet's underlay table.
func underlayState(t *testing.T, n *testNode) (links, chains []string) {
	t.Helper()
	h, err := netlink.NewHandleAt(n.underlay)
	require.NoError(t, err)
	defer h.Close()
	all, err := h.LinkList()
	require.NoError(t, err)
	for _, l := range all {
		if strings.HasPrefix(l.Attrs().Name, "ze") {
			links = append(links, l.Attrs().Name)
		}
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(n.underlay)))
	require.NoError(t, err)
	cs, err := c.ListChains()
	require.NoError(t, err)
	for _, ch := range cs {
		if ch.Table.Name == "znet-egress" {
			chains = append(chains, ch.Name)
		}
	}
	return links, chains
}

// defaultVia returns the gateways of the IPv4 default routes in the
// namespace named ns.
func defaultVia(t *testing.T, ns string) []string {
	t.Helper()
	h, err := namespaces.Open(ns)
	require.NoError(t, err)
	defer func() { _ = h.Close() }()
	nh, err := netlink.NewHandleAt(h)
	require.NoError(t, err)
	defer nh.Close()
	routes, err := nh.RouteList(nil, netlink.FAMILY_V4)
	require.NoError(t, err)
	var out []string
	for _, r := range routes {
		if r.Dst == nil || prefixOf(r.Dst).Bits() == 0 {
			out = append(out, r.Gw.String())
		}
	}
	return out
}

func TestEgressWithoutDefaultRouteIsRefusedAndRolledBack(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newTestNode(t)
	s := oneNodeSpec("out"+testutil.RandomHex(t, 2), n.id, 1)
	n.networks[s.Name] = true
	s.Egress = true
	_, err := n.d.Apply(context.Background(), s)
	requireAPIError(t, err, http.StatusBadRequest, "egress")
	assert.Contains(t, err.Error(), "no IPv4 default route")
	links, chains := underlayState(t, n)
	assert.Empty(t, links, "a half-made egress veth was left")
	assert.Empty(t, chains, "the underlay table was left")
}

func TestEgressOnOffAndDelete(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newTestNode(t)
	n.underlayLink(t, 1500, []string{"198.18.77.1/24"}, &netlink.Route{Gw: net.IPv4(198, 18, 77, 254)})
	ctx := context.Background()
	s := oneNodeSpec("out"+testutil.RandomHex(t, 2), n.id, 1)
	n.networks[s.Name] = true
	s.Egress = true
	_, err := n.d.Apply(ctx, s)
	require.NoError(t, err)
	links, chains := underlayState(t, n)
	assert.Equal(t, []string{egressLinkName(n.id, s.Name)}, links)
	assert.ElementsMatch(t, []string{"input", "forward", "postrouting"}, chains)
	st, err := n.d.Status(ctx, s.Name)
	require.NoError(t, err)
	require.Len(t, st, 1)
	assert.True(t, st[0].Egress)
	assert.Equal(t, mustAddr("198.18.77.1"), st[0].EgressAddress)
	wl := n.newWorkloadNS(t)
	_, err = n.d.Attach(ctx, s.Name, api.AttachRequest{Name: "web", NetNS: namespaces.Path(wl)})
	require.NoError(t, err)
	assert.Equal(t, []string{"10.20.1.1"}, defaultVia(t, wl), "a workload gets a default route with egress")
	vm, err := n.d.Attach(ctx, s.Name, api.AttachRequest{Name: "vm", Tap: true})
	require.NoError(t, err)
	assert.Contains(t, vm.Routes, api.Route{To: mustPrefix("0.0.0.0/0"), Via: mustAddr("10.20.1.1")}, "a VM's guest routes out too")
	// A tap lives in the network's namespace: its default route must stay
	// the way out, never be turned towards the tap.
	_, err = n.d.Apply(ctx, s)
	require.NoError(t, err)
	assert.Equal(t, []string{egressNextHop.String()}, defaultVia(t, n.nsName(s.Name)))

	// Applying the same spec again changes nothing.
	_, err = n.d.Apply(ctx, s)
	require.NoError(t, err)
	again, _ := underlayState(t, n)
	assert.Equal(t, links, again)

	off := s.Clone()
	off.Generation, off.Egress = 2, false
	_, err = n.d.Apply(ctx, off)
	require.NoError(t, err)
	links, chains = underlayState(t, n)
	assert.Empty(t, links)
	assert.Empty(t, chains, "the table goes with the last egress network")
	assert.Empty(t, defaultVia(t, wl), "the default route goes with egress")

	on := s.Clone()
	on.Generation = 3
	_, err = n.d.Apply(ctx, on)
	require.NoError(t, err)
	links, _ = underlayState(t, n)
	require.Len(t, links, 1)
	assert.Equal(t, []string{"10.20.1.1"}, defaultVia(t, wl), "back with egress")
	require.NoError(t, n.d.DeleteNetwork(ctx, s.Name, true))
	links, chains = underlayState(t, n)
	assert.Empty(t, links)
	assert.Empty(t, chains, "deleting the network removes its way out")
}
