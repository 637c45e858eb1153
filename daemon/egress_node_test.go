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

	"github.com/znet/znet/internal/testutil"
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

// giveDefaultRoute puts an uplink with an address and an IPv4 default
// route into n's underlay namespace.
func giveDefaultRoute(t *testing.T, n *testNode) {
	t.Helper()
	h, err := netlink.NewHandleAt(n.underlay)
	require.NoError(t, err)
	defer h.Close()
	// A veth whose other end stays unused (the kernel may lack dummy).
	require.NoError(t, h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "up1"}))
	up, err := h.LinkByName("up0")
	require.NoError(t, err)
	require.NoError(t, h.AddrAdd(up, &netlink.Addr{IPNet: ipNet(mustPrefix("198.18.77.1/24"))}))
	require.NoError(t, h.LinkSetUp(up))
	peer, err := h.LinkByName("up1")
	require.NoError(t, err)
	require.NoError(t, h.LinkSetUp(peer))
	require.NoError(t, h.RouteAdd(&netlink.Route{LinkIndex: up.Attrs().Index, Gw: net.IPv4(198, 18, 77, 254)}))
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
	giveDefaultRoute(t, n)
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

	on := s.Clone()
	on.Generation = 3
	_, err = n.d.Apply(ctx, on)
	require.NoError(t, err)
	links, _ = underlayState(t, n)
	require.Len(t, links, 1)
	require.NoError(t, n.d.DeleteNetwork(ctx, s.Name, true))
	links, chains = underlayState(t, n)
	assert.Empty(t, links)
	assert.Empty(t, chains, "deleting the network removes its way out")
}
