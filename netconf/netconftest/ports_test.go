package netconftest

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/netconf"
)

func TestPorts(t *testing.T) {
	h := New()
	ns, err := h.Open("zn-a.shop", true)
	require.NoError(t, err)
	_, err = ns.SetLink(netconf.Link{Name: "znbr", Bridge: true, MTU: 1400})
	require.NoError(t, err)
	h.Add("wl", nil)
	wl, id, err := h.OpenPath("/run/netns/wl")
	require.NoError(t, err)
	assert.False(t, id.IsZero())
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	require.NoError(t, ns.AddPort(netconf.Port{Name: "vw1", Master: "znbr", MTU: 1400, PeerName: "znet0", PeerMAC: mac}, wl))
	require.Error(t, ns.AddPort(netconf.Port{Name: "vw1", Master: "znbr", PeerName: "znet1"}, wl), "the name is taken")
	require.Error(t, ns.AddPort(netconf.Port{Name: "vw2", Master: "nobr", PeerName: "znet1"}, wl), "no such bridge")
	_, err = wl.SetLink(netconf.Link{Name: "znet0", MTU: 1400, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.1.2/24")}})
	require.NoError(t, err)
	require.NoError(t, wl.RouteVia("znet0", netip.MustParsePrefix("10.0.0.0/16"), netip.MustParseAddr("10.0.1.1"), true))
	require.NoError(t, ns.Pin("vw1", mac))
	require.NoError(t, ns.AddPort(netconf.Port{Name: "zt1", Master: "znbr", MTU: 1400, Tap: true, MAC: mac}, nil))

	host, err := ns.Link("vw1")
	require.NoError(t, err)
	peer, err := wl.Link("znet0")
	require.NoError(t, err)
	assert.Equal(t, peer.Index, host.Peer, "each end names the other")
	assert.Equal(t, host.Index, peer.Peer)
	assert.Equal(t, mac, peer.MAC)
	assert.Equal(t, `addr znet0 10.0.1.2/24
link lo device mtu 65536
link znet0 veth mtu 1400 up mac 02:00:00:00:00:02 peer zn-a.shop/vw1
route 10.0.0.0/16 via 10.0.1.1 dev znet0`, h.Render("wl"))
	require.NoError(t, wl.RouteVia("znet0", netip.MustParsePrefix("10.0.0.0/16"), netip.MustParseAddr("10.0.1.9"), false))
	assert.Contains(t, h.Render("wl"), "route 10.0.0.0/16", "removing matches the gateway")

	require.NoError(t, ns.DeleteLink("vw1"))
	assert.Equal(t, "link lo device mtu 65536", h.Render("wl"), "the other end goes with it")
	_, err = ns.Link("vw1")
	require.ErrorIs(t, err, netconf.ErrNoLink)

	require.NoError(t, ns.AddPort(netconf.Port{Name: "vw1", Master: "znbr", MTU: 1400, PeerName: "znet0"}, wl))
	h.Remove("wl")
	assert.NotContains(t, h.Render("zn-a.shop"), "vw1", "a namespace that goes takes its veths")
	assert.Contains(t, h.Render("zn-a.shop"), "link zt1 tuntap mtu 1400 up mac 02:00:00:00:00:02 master znbr")
}

func TestUnderlay(t *testing.T) {
	h := New()
	h.AddUplink("eth0", []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24")}, true, false)
	u, err := h.Underlay()
	require.NoError(t, err)
	defs, err := u.DefaultRoutes(false)
	require.NoError(t, err)
	assert.Equal(t, []string{"eth0"}, defs)
	defs, err = u.DefaultRoutes(true)
	require.NoError(t, err)
	assert.Empty(t, defs)
	src, err := u.RouteSource(netip.MustParseAddr("192.0.2.1"))
	require.NoError(t, err)
	assert.Equal(t, "198.18.0.1", src.String())
	_, err = u.RouteSource(netip.MustParseAddr("2001:db8::1"))
	require.Error(t, err, "no IPv6 default route")
	v, err := u.Sysctl("net/ipv6/conf/eth0/accept_ra")
	require.NoError(t, err)
	assert.Equal(t, "1", v)
	self, err := h.Identify(netconf.SelfPath)
	require.NoError(t, err)
	_, id, err := h.OpenPath("/proc/self/ns/net")
	require.NoError(t, err)
	assert.Equal(t, self, id, "the caller's namespace is the underlay")
}
