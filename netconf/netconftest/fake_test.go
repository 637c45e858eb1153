package netconftest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/firewall"
	"github.com/znet/znet/netconf"
)

func TestRender(t *testing.T) {
	h := New()
	ns, err := h.Open("zn-a.shop", true)
	require.NoError(t, err)
	defer func() { _ = ns.Close() }()
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	br := netconf.Link{Name: "znbr", Bridge: true, MTU: 1420, MAC: mac,
		Addrs: []netip.Prefix{netip.MustParsePrefix("fd00::1/64"), netip.MustParsePrefix("10.0.1.1/24")}}
	st, err := ns.SetLink(br)
	require.NoError(t, err)
	assert.False(t, st.WasUp, "a new link")
	st2, err := ns.SetLink(br)
	require.NoError(t, err)
	assert.True(t, st2.WasUp, "set twice: up since the first")
	assert.Equal(t, st.Index, st2.Index)
	_, err = ns.SetLink(netconf.Link{Name: "wg0", MTU: 1420})
	require.NoError(t, err)
	want := []netip.Prefix{netip.MustParsePrefix("10.0.2.0/24")}
	require.NoError(t, ns.Routes("wg0", nil, want))
	require.NoError(t, ns.Routes("wg0", want, want), "applying twice changes nothing")
	require.NoError(t, ns.ProxyNeigh("znbr", []netip.Addr{netip.MustParseAddr("fd00::5")}))
	assert.Equal(t, `addr znbr 10.0.1.1/24
addr znbr fd00::1/64
link lo device mtu 65536
link wg0 device mtu 1420 up
link znbr bridge mtu 1420 up mac 02:00:00:00:00:01
proxy fd00::5 dev znbr
route 10.0.2.0/24 dev wg0`, h.Render("zn-a.shop"))

	require.NoError(t, ns.Routes("wg0", want, nil))
	require.NoError(t, ns.ProxyNeigh("znbr", nil))
	require.NoError(t, ns.DeleteLink("wg0"))
	require.NoError(t, ns.DeleteLink("wg0"), "removing twice")
	assert.NotContains(t, h.Render("zn-a.shop"), "wg0")
	assert.NotContains(t, h.Render("zn-a.shop"), "proxy")
	assert.Error(t, ns.Routes("wg0", nil, want), "routes need their link")
}

func TestHostLifecycle(t *testing.T) {
	h := New()
	_, err := h.Open("zn-a.shop", false)
	require.Error(t, err, "opening without create needs the namespace")
	a, err := h.Open("zn-a.shop", true)
	require.NoError(t, err)
	h.Add("zn-b.shop", map[string]string{"vw1": "veth"})
	names, err := h.List("zn-a.")
	require.NoError(t, err)
	assert.Equal(t, []string{"zn-a.shop"}, names)
	links, err := a.Links()
	require.NoError(t, err)
	assert.Equal(t, []netconf.LinkInfo{{Name: "lo", Kind: "device", Index: 1, MTU: 65536}}, links)
	c1, _ := a.Cookie()
	require.NoError(t, h.Delete(context.Background(), "zn-a.shop"))
	require.NoError(t, h.Delete(context.Background(), "zn-a.shop"), "deleting twice")
	assert.Equal(t, []string{"zn-b.shop"}, h.Names())
	again, err := h.Open("zn-a.shop", true)
	require.NoError(t, err)
	c2, _ := again.Cookie()
	assert.NotEqual(t, c1, c2, "a new namespace has a new cookie")
	assert.Equal(t, []string{"open zn-a.shop", "open zn-a.shop", "delete zn-a.shop", "delete zn-a.shop", "open zn-a.shop"}, h.Calls())
}

func TestFailNext(t *testing.T) {
	h := New()
	boom := errors.New("boom")
	ns, err := h.Open("zn-a.shop", true)
	require.NoError(t, err)
	h.FailNext(OpInstall, boom)
	require.ErrorIs(t, ns.Install(firewall.Rules{Bridge: "znbr"}), boom)
	assert.Nil(t, h.Rules("zn-a.shop"), "a failed install changes nothing")
	assert.Zero(t, h.Installs("zn-a.shop"))
	require.NoError(t, ns.Install(firewall.Rules{Bridge: "znbr"}), "only the next call fails")
	assert.Equal(t, 1, h.Installs("zn-a.shop"))
	h.FailNext(OpSetLink, boom)
	_, err = ns.SetLink(netconf.Link{Name: "znbr", Bridge: true})
	require.ErrorIs(t, err, boom)
	assert.NotContains(t, h.Render("zn-a.shop"), "znbr")
}
