package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/netconf/netconftest"
	"github.com/znet/znet/overlay/overlaytest"
	"github.com/znet/znet/peers"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
)

// These tests run the daemon's logic over fakes (overlaytest for the data
// plane, netconftest for the namespaces), without root: what each change
// asks of the kernel, and what a failure at each step leaves behind. The
// root tests (apply_test.go, rollback_test.go, recover_test.go, ...) check
// the same against the kernel.

// fakeNet is a network applied through a unit.
type fakeNet struct {
	u     *unit
	name  string
	self  spec.Node
	other []spec.Node
}

// newFakeNet reserves network name on u and returns it with one other
// member (node2, with an endpoint).
func newFakeNet(t *testing.T, u *unit, name string) *fakeNet {
	t.Helper()
	res, err := u.d.Reserve(context.Background(), name)
	require.NoError(t, err)
	self := spec.Node{ID: u.id, Subnet: mustPrefix("10.20.1.0/24"), Endpoint: fmt.Sprintf("198.18.0.1:%d", res.ListenPort)}
	other := member(t, "node2", "10.20.2.0/24")
	other.Endpoint = "198.18.0.2:51820"
	return &fakeNet{u: u, name: name, self: self, other: []spec.Node{other}}
}

// spec returns generation gen, with the members added so far.
func (f *fakeNet) spec(gen uint64) *spec.Spec {
	s := specOf(f.name, gen, f.self, f.other...)
	s.MTU = 1400 // not derived from the test machine's routes
	return s
}

// addMember adds node<i> with subnet 10.20.<i>.0/24.
func (f *fakeNet) addMember(t *testing.T, i int) {
	f.other = append(f.other, member(t, fmt.Sprintf("node%d", i), fmt.Sprintf("10.20.%d.0/24", i)))
}

func (f *fakeNet) apply(t *testing.T, gen uint64) api.ApplyResult {
	t.Helper()
	res, err := f.u.d.Apply(context.Background(), f.spec(gen))
	require.NoError(t, err)
	return res
}

func (f *fakeNet) ns() string { return namespaces.Name(f.u.id, f.name) }

func (f *fakeNet) render() string { return f.u.host.Render(f.ns()) }

func (f *fakeNet) ifname() string { return f.u.d.device(f.name, 0).IfName }

// peers returns the device's peers as "key allowed-ips", sorted.
func (f *fakeNet) peers(t *testing.T) []string {
	t.Helper()
	dev, err := f.u.backend.Show(context.Background(), f.u.d.device(f.name, 0))
	require.NoError(t, err)
	var out []string
	for _, p := range dev.Peers {
		var ips []string
		for _, a := range p.AllowedIPs {
			ips = append(ips, a.String())
		}
		out = append(out, p.PublicKey.String()+" "+strings.Join(ips, ","))
	}
	return sortedStrings(out)
}

// want renders what the network's namespace must hold for generation s
// with access peers acc: the bridge with the gateway addresses and the
// fixed MAC, the device, a route per other member's subnets and per access
// peer's address, and the access peers' IPv6 addresses proxied.
func (f *fakeNet) want(t *testing.T, s *spec.Spec, acc ...api.AccessGrant) string {
	t.Helper()
	dev := f.ifname()
	sub := subnetsFor(t, s, f.self)
	lines := []string{
		"link lo device mtu 65536 up",
		fmt.Sprintf("link %s bridge mtu 1400 up mac %s", bridgeName, bridgeMAC(f.name)),
		fmt.Sprintf("addr %s %s/24", bridgeName, sub.Gateway4),
		fmt.Sprintf("addr %s %s/64", bridgeName, sub.Gateway6),
		fmt.Sprintf("link %s device mtu 1400 up", dev),
	}
	for _, n := range s.Nodes[1:] {
		o := subnetsFor(t, s, n)
		lines = append(lines, fmt.Sprintf("route %s dev %s", o.V4, dev), fmt.Sprintf("route %s dev %s", o.V6, dev))
	}
	for _, a := range acc {
		lines = append(lines, fmt.Sprintf("proxy %s dev %s", a.IPv6, bridgeName),
			fmt.Sprintf("route %s/32 dev %s", a.IPv4, dev), fmt.Sprintf("route %s/128 dev %s", a.IPv6, dev))
	}
	return strings.Join(sortedStrings(lines), "\n")
}

// stored returns the generation the state holds for the network; 0 when
// it is reserved only, and false when it is unknown.
func (f *fakeNet) stored(t *testing.T) (uint64, bool) {
	t.Helper()
	nets, err := f.u.d.Networks(context.Background())
	require.NoError(t, err)
	for _, n := range nets {
		if n.Name == f.name {
			return n.Generation, true
		}
	}
	return 0, false
}

func TestFakeApplyFirst(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	res := f.apply(t, 1)
	assert.True(t, res.Changed)
	assert.Equal(t, f.want(t, f.spec(1)), f.render())
	assert.Equal(t, "1", u.host.Sysctl(f.ns(), "net/ipv4/ip_forward"))
	assert.Equal(t, "0", u.host.Sysctl(f.ns(), "net/ipv6/conf/default/accept_ra"))
	assert.Equal(t, []string{f.other[0].PublicKey + " 10.20.2.0/24," + subnetsFor(t, f.spec(1), f.other[0]).V6.String()}, f.peers(t))
	rules := u.host.Rules(f.ns())
	require.NotNil(t, rules)
	assert.Equal(t, bridgeName, rules.Bridge)
	assert.Equal(t, f.ifname(), rules.Overlay)
	gen, ok := f.stored(t)
	assert.True(t, ok)
	assert.Equal(t, uint64(1), gen)
}

func TestFakeApplyUpdate(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	f.addMember(t, 3)
	res := f.apply(t, 2)
	assert.True(t, res.Changed)
	assert.Equal(t, f.want(t, f.spec(2)), f.render())
	assert.Len(t, f.peers(t), 2)
	gen, _ := f.stored(t)
	assert.Equal(t, uint64(2), gen)
	f.other = f.other[:1]
	f.apply(t, 3)
	assert.Equal(t, f.want(t, f.spec(3)), f.render(), "the member's routes went with it")
	assert.Len(t, f.peers(t), 1)
}

// TestFakeApplyRemembersFirewall checks that an apply whose rules are the
// same does not rebuild the firewall, unless the ruleset changed since
// (an operator's nft) or the apply changes nothing (a repair).
func TestFakeApplyRemembersFirewall(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	require.Equal(t, 1, u.host.Installs(f.ns()))
	f.addMember(t, 3)
	f.apply(t, 2)
	assert.Equal(t, 1, u.host.Installs(f.ns()), "same rules, same generation: not rebuilt")
	u.host.ChangeRuleset(f.ns())
	f.addMember(t, 4)
	f.apply(t, 3)
	assert.Equal(t, 2, u.host.Installs(f.ns()), "the ruleset changed meanwhile: rebuilt")
	res := f.apply(t, 3)
	assert.False(t, res.Changed)
	assert.Equal(t, 3, u.host.Installs(f.ns()), "a repair rebuilds")
}

func TestFakeApplyNoop(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	before := f.render()
	u.backend.ResetCalls()
	res := f.apply(t, 1)
	assert.False(t, res.Changed)
	assert.Equal(t, before, f.render())
	assert.NotContains(t, u.backend.Ops(), overlaytest.OpConfigure, "a device that matches is not touched")
}

func TestFakeApplyStale(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.addMember(t, 3)
	f.apply(t, 2)
	before := f.render()
	u.host.Calls()
	u.backend.ResetCalls()
	f.other = f.other[:1]
	_, err := u.d.Apply(context.Background(), f.spec(1))
	requireAPIError(t, err, 409, "generation")
	assert.Empty(t, u.host.Calls(), "nothing asked of the kernel")
	assert.Empty(t, u.backend.Ops())
	assert.Equal(t, before, f.render())
	gen, _ := f.stored(t)
	assert.Equal(t, uint64(2), gen)
}

// failingSteps are the steps of realize that can fail, in order: each
// one's failure must leave the network as it was.
var failingSteps = []struct {
	name    string
	host    string // a netconftest operation, or
	backend string // an overlaytest one
}{
	{"open", netconftest.OpOpen, ""},
	{"prepare", netconftest.OpPrepare, ""},
	{"bridge", netconftest.OpSetLink, ""},
	{"ensure", "", overlaytest.OpEnsure},
	{"configure", "", overlaytest.OpConfigure},
	{"routes", netconftest.OpRoutes, ""},
	{"proxy neighbours", netconftest.OpProxyNeigh, ""},
	{"firewall", netconftest.OpInstall, ""},
}

func failNext(u *unit, host, backend string) {
	if host != "" {
		u.host.FailNext(host, errInjected)
	} else {
		u.backend.FailNext(backend, errInjected)
	}
}

func TestFakeRollbackFirstApply(t *testing.T) {
	for _, tt := range failingSteps {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t, newNodeID(t))
			f := newFakeNet(t, u, "shop")
			failNext(u, tt.host, tt.backend)
			_, err := u.d.Apply(context.Background(), f.spec(1))
			require.ErrorIs(t, err, errInjected)
			assert.Empty(t, u.host.Names(), "the namespace is removed")
			assert.Empty(t, u.backend.IfNames(), "the device is removed")
			gen, ok := f.stored(t)
			assert.True(t, ok, "the reservation stays")
			assert.Zero(t, gen, "nothing applied")
			f.apply(t, 1) // and the next try works
			assert.Equal(t, f.want(t, f.spec(1)), f.render())
		})
	}
}

func TestFakeRollbackUpdate(t *testing.T) {
	for _, tt := range failingSteps {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t, newNodeID(t))
			f := newFakeNet(t, u, "shop")
			f.apply(t, 1)
			before, peers := f.render(), f.peers(t)
			f.addMember(t, 3)
			// The rules stay the same; an nft change makes the apply
			// install them again, so the firewall step runs too.
			u.host.ChangeRuleset(f.ns())
			prepareAgain(f, tt.host)
			failNext(u, tt.host, tt.backend)
			_, err := u.d.Apply(context.Background(), f.spec(2))
			require.ErrorIs(t, err, errInjected)
			assert.Equal(t, before, f.render(), "the kernel is back at generation 1")
			assert.Equal(t, peers, f.peers(t))
			gen, _ := f.stored(t)
			assert.Equal(t, uint64(1), gen)
		})
	}
}

// TestFakeEgressNoDefaultRoute: a node without an IPv4 default route
// cannot give a network a way out; the apply is refused and rolled back.
func TestFakeEgressNoDefaultRoute(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	s := f.spec(1)
	s.Egress = true
	_, err := u.d.Apply(context.Background(), s)
	require.ErrorIs(t, err, api.ErrInvalid)
	assert.Empty(t, u.host.Names())
	assert.Equal(t, "link lo device mtu 65536", u.host.Render(netconftest.UnderlayName), "the veth's end is gone too")
}

func TestFakeDelete(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	u.host.FailNext(netconftest.OpDelete, errInjected)
	err := u.d.DeleteNetwork(context.Background(), "shop", false)
	require.ErrorIs(t, err, errInjected)
	_, ok := f.stored(t)
	assert.True(t, ok, "kept in the state until its namespace is gone")
	require.NoError(t, u.d.DeleteNetwork(context.Background(), "shop", false))
	assert.Empty(t, u.host.Names())
	assert.Empty(t, u.backend.IfNames())
	_, ok = f.stored(t)
	assert.False(t, ok)
}

func TestFakeRecoverAdopts(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	before, peers := f.render(), f.peers(t)
	pid := u.backend.PID(u.d.device("shop", 0))
	u.d.Close()
	u.backend.ResetCalls()
	d := u.newDaemon(t)
	require.NoError(t, d.Recover(context.Background()))
	assert.Equal(t, before, f.render())
	assert.Equal(t, peers, f.peers(t))
	assert.Equal(t, pid, u.backend.PID(d.device("shop", 0)), "the running data plane is adopted")
	assert.NotContains(t, u.backend.Ops(), overlaytest.OpConfigure, "and not reconfigured")
}

func TestFakeRecoverRebuilds(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	before, peers := f.render(), f.peers(t)
	u.d.Close()
	// A reboot: no namespace, no data plane.
	u.host.Remove(f.ns())
	u.backend.Crash(f.ifname())
	d := u.newDaemon(t)
	require.NoError(t, d.Recover(context.Background()))
	assert.Equal(t, before, f.render())
	assert.Equal(t, peers, f.peers(t))
	assert.Equal(t, 1, u.host.Installs(f.ns()))
}

// TestFakeRebuiltLinksStartAtOnce: a first apply staggers the start of its
// new public links (peers added without their keepalive, raised later); a
// data plane re-created for a network that ran before adds the same peers
// with their keepalive at once: the links were up, and the far side, whose
// session just died, is not starting them too. An apply that adds a member
// staggers that member only.
func TestFakeRebuiltLinksStartAtOnce(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	assert.Equal(t, map[string]bool{f.other[0].PublicKey: false}, keepalivesConfigured(t, u.backend), "a deploy staggers")

	u.d.Close()
	u.host.Remove(f.ns())
	u.backend.Crash(f.ifname())
	d := u.newDaemon(t)
	require.NoError(t, d.Recover(context.Background()))
	assert.Equal(t, map[string]bool{f.other[0].PublicKey: true}, keepalivesConfigured(t, u.backend), "a rebuilt data plane starts at once")

	f.u.d = d
	f.addMember(t, 3)
	f.other[1].Endpoint = "198.18.0.3:51820"
	f.apply(t, 2)
	assert.Equal(t, map[string]bool{f.other[1].PublicKey: false}, keepalivesConfigured(t, u.backend), "only the new member is staggered")
}

// keepalivesConfigured returns, for each peer the last Configure added,
// whether it came with its keepalive.
func keepalivesConfigured(t *testing.T, b *overlaytest.Backend) map[string]bool {
	t.Helper()
	calls := b.Calls()
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].Op != overlaytest.OpConfigure || calls[i].Config == nil {
			continue
		}
		out := map[string]bool{}
		for _, p := range calls[i].Config.Peers {
			if !p.UpdateOnly && !p.Remove {
				out[p.PublicKey.String()] = p.PersistentKeepaliveInterval != nil && *p.PersistentKeepaliveInterval > 0
			}
		}
		return out
	}
	t.Fatal("no Configure")
	return nil
}

func TestFakeRecoverSweepsOrphans(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	orphan := namespaces.Name(u.id, "gone")
	foreign := namespaces.Name("zt"+"other", "shop")
	u.host.Add(orphan, nil)
	u.host.Add(foreign, nil)
	require.NoError(t, u.d.Recover(context.Background()))
	assert.Equal(t, sortedStrings([]string{f.ns(), foreign}), u.host.Names(), "this node's orphan is removed, another node's namespace is left")
}

func TestFakeRecoverRemovesStrayPorts(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	before := f.render()
	// An attach that crashed after it plumbed its port; a veth that is
	// not a workload's port by its name; a tap that is not ours.
	u.host.Add(f.ns(), map[string]string{hostIfName("web"): "veth", "other0": "veth", "tap0": "tuntap"})
	require.NoError(t, u.d.Recover(context.Background()))
	var names []string
	for _, line := range strings.Split(f.render(), "\n") {
		if strings.HasPrefix(line, "link ") {
			names = append(names, strings.Fields(line)[1])
		}
	}
	assert.NotContains(t, names, hostIfName("web"))
	assert.Contains(t, names, "other0")
	assert.Contains(t, names, "tap0")
	assert.Contains(t, f.render(), strings.Split(before, "\n")[0])
}

func TestFakeRecoverReportsFailure(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	shop := newFakeNet(t, u, "shop")
	shop.apply(t, 1)
	lab := newFakeNet(t, u, "lab")
	lab.apply(t, 1)
	labBefore := lab.render()
	u.host.Remove(shop.ns())
	u.host.Remove(lab.ns())
	u.host.FailNextIn(lab.ns(), netconftest.OpInstall, errInjected)
	err := u.d.Recover(context.Background())
	require.ErrorIs(t, err, errInjected)
	assert.Contains(t, err.Error(), "network lab")
	assert.Equal(t, shop.want(t, shop.spec(1)), shop.render(), "the other network still comes up")
	require.NoError(t, u.d.Recover(context.Background()))
	assert.Equal(t, labBefore, lab.render())
}

func TestFakeAccessAdd(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	key := publicKey(t)
	g, err := u.d.AddAccess(context.Background(), "shop", api.AccessRequest{Name: "laptop", PublicKey: key})
	require.NoError(t, err)
	assert.Equal(t, f.want(t, f.spec(1), g), f.render())
	assert.Contains(t, f.peers(t), fmt.Sprintf("%s %s/32,%s/128", key, g.IPv4, g.IPv6))
	assert.Equal(t, 1400, g.MTU)
	assert.Equal(t, []netip.Addr{g.IPv4, g.IPv6}, u.host.Rules(f.ns()).AccessPeers)
	list, err := u.d.AccessPeers(context.Background(), "shop")
	require.NoError(t, err)
	assert.Len(t, list, 1)
}

func TestFakeAccessAddRollback(t *testing.T) {
	for _, tt := range failingSteps[1:] { // open: the namespace exists
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t, newNodeID(t))
			f := newFakeNet(t, u, "shop")
			f.apply(t, 1)
			before, peers := f.render(), f.peers(t)
			prepareAgain(f, tt.host)
			failNext(u, tt.host, tt.backend)
			_, err := u.d.AddAccess(context.Background(), "shop", api.AccessRequest{Name: "laptop", PublicKey: publicKey(t)})
			require.ErrorIs(t, err, errInjected)
			assert.Equal(t, before, f.render())
			assert.Equal(t, peers, f.peers(t))
			assert.Empty(t, u.host.Rules(f.ns()).AccessPeers)
			list, err := u.d.AccessPeers(context.Background(), "shop")
			require.NoError(t, err)
			assert.Empty(t, list)
		})
	}
}

func TestFakeAccessRemove(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	before, peers := f.render(), f.peers(t)
	_, err := u.d.AddAccess(context.Background(), "shop", api.AccessRequest{Name: "laptop", PublicKey: publicKey(t)})
	require.NoError(t, err)
	require.NoError(t, u.d.RemoveAccess(context.Background(), "shop", "laptop"))
	assert.Equal(t, before, f.render())
	assert.Equal(t, peers, f.peers(t))
	assert.Empty(t, u.host.Rules(f.ns()).AccessPeers)
	requireAPIError(t, u.d.RemoveAccess(context.Background(), "shop", "laptop"), 404, "peer")
	// The name is free again.
	_, err = u.d.AddAccess(context.Background(), "shop", api.AccessRequest{Name: "laptop", PublicKey: publicKey(t)})
	require.NoError(t, err)
}

func TestFakeAccessRemoveRollback(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	g, err := u.d.AddAccess(context.Background(), "shop", api.AccessRequest{Name: "laptop", PublicKey: publicKey(t)})
	require.NoError(t, err)
	with, peers := f.render(), f.peers(t)
	u.host.FailNext(netconftest.OpRoutes, errInjected)
	require.ErrorIs(t, u.d.RemoveAccess(context.Background(), "shop", "laptop"), errInjected)
	assert.Equal(t, with, f.render())
	assert.Equal(t, peers, f.peers(t))
	assert.Equal(t, []netip.Addr{g.IPv4, g.IPv6}, u.host.Rules(f.ns()).AccessPeers)
}

// seedWorkload records workload name in network f as attached (its port
// in the namespace, its address taken), as an attach would have left it.
func (f *fakeNet) seedWorkload(t *testing.T, name string, addr netip.Addr) *store.Workload {
	t.Helper()
	w := &store.Workload{Network: f.name, Name: name, NetNS: "/run/netns/zt-fake-" + name, IfName: "znet0",
		HostIf: hostIfName(name), IPv4: addr, IPv6: subnetsFor(t, f.spec(1), f.self).Twin(addr)}
	require.NoError(t, f.u.store.Update(func(tx *store.Tx) error {
		n, err := tx.Network(f.name)
		if err != nil {
			return err
		}
		if err := n.Addrs.Reserve(addr, "workload/"+name); err != nil {
			return err
		}
		if err := tx.PutWorkload(w); err != nil {
			return err
		}
		return tx.PutNetwork(n)
	}))
	f.u.host.Add(f.ns(), map[string]string{w.HostIf: "veth"})
	return w
}

func TestFakeDetach(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	before := f.render()
	web := f.seedWorkload(t, "web", mustAddr("10.20.1.2"))
	db := f.seedWorkload(t, "db", mustAddr("10.20.1.3"))
	require.Contains(t, f.render(), "link "+web.HostIf+" veth")

	require.NoError(t, u.d.Detach(context.Background(), "shop", "web"))
	assert.NotContains(t, f.render(), web.HostIf, "its port is removed")
	assert.Contains(t, f.render(), db.HostIf, "the other's stays")
	rules := u.host.Rules(f.ns())
	require.NotNil(t, rules)
	require.Len(t, rules.Ports, 1, "the firewall admits the other one only")
	assert.Equal(t, db.HostIf, rules.Ports[0].IfName)
	wls, err := u.d.Workloads(context.Background(), "shop")
	require.NoError(t, err)
	require.Len(t, wls, 1)
	assert.Equal(t, "db", wls[0].Name)
	requireAPIError(t, u.d.Detach(context.Background(), "shop", "web"), 404, "workload")

	require.NoError(t, u.d.Detach(context.Background(), "shop", "db"))
	assert.Equal(t, before, f.render())
	assert.Empty(t, u.host.Rules(f.ns()).Ports)
	var owners map[netip.Addr]string
	require.NoError(t, u.store.View(func(tx *store.Tx) error {
		n, err := tx.Network("shop")
		if err == nil {
			owners = n.Addrs.Allocated()
		}
		return err
	}))
	assert.Empty(t, owners, "both addresses are free again")
}

// TestFakeDetachWithoutNamespace detaches a workload of a network whose
// namespace is gone (a reboot, before recovery rebuilds it): the state
// forgets it, and there is no firewall to update.
func TestFakeDetachWithoutNamespace(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	f.seedWorkload(t, "web", mustAddr("10.20.1.2"))
	u.host.Remove(f.ns())
	require.NoError(t, u.d.Detach(context.Background(), "shop", "web"))
	wls, err := u.d.Workloads(context.Background(), "shop")
	require.NoError(t, err)
	assert.Empty(t, wls)
}

// TestFakeDetachFirewallFails keeps the workload when its network's
// firewall cannot be updated: the port is gone, but the state, which
// recovery and a re-apply follow, still has it, so detaching again works.
func TestFakeDetachFirewallFails(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	f.seedWorkload(t, "web", mustAddr("10.20.1.2"))
	f.apply(t, 1) // a repair: web's port into the firewall, as its attach would have
	require.NotEmpty(t, u.host.Rules(f.ns()).Ports)
	u.host.FailNext(netconftest.OpInstall, errInjected)
	require.ErrorIs(t, u.d.Detach(context.Background(), "shop", "web"), errInjected)
	wls, err := u.d.Workloads(context.Background(), "shop")
	require.NoError(t, err)
	assert.Len(t, wls, 1)
	require.NoError(t, u.d.Detach(context.Background(), "shop", "web"))
	assert.Empty(t, u.host.Rules(f.ns()).Ports)
}

// TestFakeFailedRaiseSetByNextApply: a keepalive raise that fails (the
// data plane did not answer) leaves the record of what the data plane was
// configured with saying the keepalive is set. The next apply, even one
// that only adds a member, reads the device and sets it; before, only a
// re-apply of the same spec or a restart did.
func TestFakeFailedRaiseSetByNextApply(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	high := member(t, "zz", "10.20.9.0/24") // sorts after this node: started StartDelay after the apply
	high.Endpoint = "198.18.0.9:51820"
	f.other = append(f.other, high)
	f.apply(t, 1)
	u.backend.FailNext(overlaytest.OpConfigure, errors.New("uapi: timed out"))
	raised := func() bool {
		for _, c := range u.backend.Calls() {
			if c.Op == overlaytest.OpConfigure && c.Config != nil && len(c.Config.Peers) == 1 &&
				c.Config.Peers[0].UpdateOnly && c.Config.Peers[0].PublicKey.String() == high.PublicKey {
				return true
			}
		}
		return false
	}
	require.Eventually(t, raised, peers.StartDelay+5*time.Second, 20*time.Millisecond, "the raise was tried")
	keepalive := func() time.Duration {
		dev, err := u.backend.Show(context.Background(), u.d.device(f.name, 0))
		require.NoError(t, err)
		for _, p := range dev.Peers {
			if p.PublicKey.String() == high.PublicKey {
				return p.PersistentKeepaliveInterval
			}
		}
		t.Fatal("peer gone")
		return 0
	}
	require.Zero(t, keepalive(), "the raise failed")

	f.addMember(t, 3)
	f.other[len(f.other)-1].Endpoint = "198.18.0.3:51820"
	f.apply(t, 2)
	assert.Equal(t, peers.Keepalive, keepalive(), "the next apply set the keepalive the raise missed")
}
