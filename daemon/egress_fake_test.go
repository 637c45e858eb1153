package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/firewall"
	"github.com/znet/znet/netconf/netconftest"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
)

// These tests run the way out over the fakes, without root; the root
// tests (egress_test.go, egress_node_test.go) check it against the kernel.

// egressUnit returns a unit whose underlay has an uplink eth0 with a
// global address of each family and default routes (IPv6 too with v6),
// and a network on it.
func egressUnit(t *testing.T, v6 bool) (*unit, *fakeNet) {
	t.Helper()
	u := newUnit(t, newNodeID(t))
	u.host.AddUplink("eth0", []netip.Prefix{mustPrefix("198.18.0.1/24"), mustPrefix("2001:db8:1::1/64")}, true, v6)
	return u, newFakeNet(t, u, "shop")
}

// egressSpec is generation gen of f's network, with egress or not.
func (f *fakeNet) egressSpec(gen uint64, on bool) *spec.Spec {
	s := f.spec(gen)
	s.Egress = on
	return s
}

// egressLines are what the network's namespace and the underlay gain for
// the way out: the veth, the transfer address, the next hops' permanent
// neighbours and the routes (IPv6 too with v6).
func (f *fakeNet) egressLines(t *testing.T, v6 bool) (inside, under []string) {
	t.Helper()
	port := f.listenPort(t)
	src, err := transferAddr(port)
	require.NoError(t, err)
	outer := egressLinkName(f.u.id, f.name)
	in, out := f.linkMAC(t, f.ns(), egressIfName), f.linkMAC(t, netconftest.UnderlayName, outer)
	inside = []string{
		fmt.Sprintf("link %s veth mtu 1500 up mac %s peer %s/%s", egressIfName, in, netconftest.UnderlayName, outer),
		fmt.Sprintf("addr %s %s/32", egressIfName, src),
		fmt.Sprintf("neigh %s lladdr %s dev %s", egressNextHop, out, egressIfName),
		fmt.Sprintf("route 0.0.0.0/0 via %s dev %s onlink", egressNextHop, egressIfName),
	}
	under = []string{
		fmt.Sprintf("link %s veth mtu 1500 up mac %s peer %s/%s", outer, out, f.ns(), egressIfName),
		fmt.Sprintf("neigh %s lladdr %s dev %s", src, in, outer),
		fmt.Sprintf("route %s/32 dev %s", src, outer),
	}
	if v6 {
		src6 := transferAddr6(src)
		inside = append(inside,
			fmt.Sprintf("neigh %s lladdr %s dev %s", egressNextHop6, out, egressIfName),
			fmt.Sprintf("route ::/0 via %s dev %s onlink", egressNextHop6, egressIfName))
		under = append(under,
			fmt.Sprintf("neigh %s lladdr %s dev %s", src6, in, outer),
			fmt.Sprintf("route %s/128 dev %s", src6, outer))
	}
	return inside, under
}

// listenPort returns the network's WireGuard port.
func (f *fakeNet) listenPort(t *testing.T) int {
	t.Helper()
	var port int
	require.NoError(t, f.u.store.View(func(tx *store.Tx) error {
		n, err := tx.Network(f.name)
		if err == nil {
			port = n.ListenPort
		}
		return err
	}))
	return port
}

// linkMAC returns the MAC of link in fake namespace ns.
func (f *fakeNet) linkMAC(t *testing.T, ns, link string) string {
	t.Helper()
	for _, line := range strings.Split(f.u.host.Render(ns), "\n") {
		var name, kind, mac string
		var mtu int
		if _, err := fmt.Sscanf(line, "link %s %s mtu %d up mac %s", &name, &kind, &mtu, &mac); err == nil && name == link {
			return mac
		}
	}
	t.Fatalf("no link %s in %s:\n%s", link, ns, f.u.host.Render(ns))
	return ""
}

// renderWith returns base and lines, sorted, as Render shows them.
func renderWith(base string, lines ...string) string {
	return strings.Join(sortedStrings(append(strings.Split(base, "\n"), lines...)), "\n")
}

func TestFakeEgressOnOff(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("ipv6=%v", v6), func(t *testing.T) {
			u, f := egressUnit(t, v6)
			f.apply(t, 1)
			path := workloadNS(u, "web")
			att := f.attach(t, api.AttachRequest{Name: "web", NetNS: path})
			before, underBefore, wlBefore := f.render(), u.host.Render(netconftest.UnderlayName), u.host.Render("web")

			_, err := u.d.Apply(context.Background(), f.egressSpec(2, true))
			require.NoError(t, err)
			inside, under := f.egressLines(t, v6)
			assert.Equal(t, renderWith(before, inside...), f.render())
			assert.Equal(t, renderWith(underBefore, under...), u.host.Render(netconftest.UnderlayName))
			src, _ := transferAddr(f.listenPort(t))
			link := firewall.EgressLink{IfName: egressLinkName(u.id, f.name), Source: src}
			if v6 {
				link.Source6 = transferAddr6(src)
			}
			assert.Equal(t, []firewall.EgressLink{link}, u.host.Uplink())
			rules := u.host.Rules(f.ns())
			require.NotNil(t, rules.Egress)
			assert.Equal(t, src, rules.Egress.Source)
			assert.Contains(t, rules.Egress.Blocked, mustPrefix("198.18.0.1/32"), "the node's own address")
			assert.Contains(t, rules.Egress.Blocked, mustPrefix("198.18.0.0/24"), "the subnet around it")
			assert.Equal(t, "1", u.host.Sysctl(netconftest.UnderlayName, "net/ipv4/conf/eth0/forwarding"))
			defaults := []string{fmt.Sprintf("route 0.0.0.0/0 via %s dev znet0", att.Gateway)}
			if v6 {
				defaults = append(defaults, fmt.Sprintf("route ::/0 via %s dev znet0", att.Gateway6))
				assert.Equal(t, "2", u.host.Sysctl(netconftest.UnderlayName, "net/ipv6/conf/eth0/accept_ra"), "the uplink keeps taking RAs")
				assert.Equal(t, "1", u.host.Sysctl(netconftest.UnderlayName, "net/ipv6/conf/all/forwarding"))
			} else {
				assert.Equal(t, "1", u.host.Sysctl(netconftest.UnderlayName, "net/ipv6/conf/"+link.IfName+"/disable_ipv6"))
			}
			assert.Equal(t, renderWith(wlBefore, defaults...), u.host.Render("web"), "the workload's default routes")

			u.host.Calls()
			_, err = u.d.Apply(context.Background(), f.egressSpec(3, false))
			require.NoError(t, err)
			assert.Equal(t, before, f.render())
			assert.Equal(t, underBefore, u.host.Render(netconftest.UnderlayName))
			assert.Empty(t, u.host.Uplink())
			assert.Nil(t, u.host.Rules(f.ns()).Egress)
			assert.Equal(t, wlBefore, u.host.Render("web"))
			calls := u.host.Calls()
			for _, a := range []netip.Addr{src, transferAddr6(src)} {
				assert.Contains(t, calls, "flush "+netconftest.UnderlayName+" "+a.String(), "flows cut in the underlay")
				assert.Contains(t, calls, "flush "+f.ns()+" "+a.String(), "and in the namespace")
			}
		})
	}
}

// egressSteps are the steps of turning egress on that a failure can stop,
// in the network's namespace or (under) the underlay.
var egressSteps = []struct {
	name, op string
	under    bool
}{
	{"veth", netconftest.OpAddPort, false},
	{"inside address", netconftest.OpSetLink, false},
	{"inside neighbour", netconftest.OpNeigh, false},
	{"inside default route", netconftest.OpAddRoute, false},
	{"inside sysctls", netconftest.OpSysctls, false},
	{"underlay sysctls", netconftest.OpSysctls, true},
	{"underlay end up", netconftest.OpSetLink, true},
	{"underlay neighbour", netconftest.OpNeigh, true},
	{"underlay route", netconftest.OpAddRoute, true},
	{"uplink table", netconftest.OpUplink, true},
	{"firewall", netconftest.OpInstall, false},
}

func TestFakeEgressRollback(t *testing.T) {
	for _, tt := range egressSteps {
		t.Run(tt.name, func(t *testing.T) {
			u, f := egressUnit(t, true)
			f.apply(t, 1)
			path := workloadNS(u, "web")
			f.attach(t, api.AttachRequest{Name: "web", NetNS: path})
			before, underBefore, wlBefore := f.render(), u.host.Render(netconftest.UnderlayName), u.host.Render("web")
			rules := u.host.Rules(f.ns())
			// The rules change with egress, so the firewall step runs.
			in := f.ns()
			if tt.under {
				in = netconftest.UnderlayName
			}
			u.host.FailNextIn(in, tt.op, errInjected)
			_, err := u.d.Apply(context.Background(), f.egressSpec(2, true))
			require.ErrorIs(t, err, errInjected)
			assert.Equal(t, before, f.render(), "the namespace as at generation 1")
			assert.Equal(t, underBefore, u.host.Render(netconftest.UnderlayName), "the underlay as before")
			assert.Empty(t, u.host.Uplink(), "no translation left")
			assert.Equal(t, rules, u.host.Rules(f.ns()), "the firewall as before")
			assert.Equal(t, wlBefore, u.host.Render("web"), "no default route in the workload")
			gen, _ := f.stored(t)
			assert.Equal(t, uint64(1), gen)

			_, err = u.d.Apply(context.Background(), f.egressSpec(2, true)) // and the next try works
			require.NoError(t, err)
			inside, _ := f.egressLines(t, true)
			assert.Equal(t, renderWith(before, inside...), f.render())
		})
	}
}
