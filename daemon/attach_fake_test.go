package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/netconf/netconftest"
)

// These tests run attach, detach, re-attach and MTU following over the
// fakes, without root; the root tests (workload_test.go, tap_test.go,
// mtu_test.go, ...) check the same against the kernel.

// workloadNS makes a workload's namespace called name on u's fake host
// and returns its path.
func workloadNS(u *unit, name string) string {
	u.host.Add(name, nil)
	return namespaces.Path(name)
}

// attach attaches req to f's network and fails the test on error.
func (f *fakeNet) attach(t *testing.T, req api.AttachRequest) api.Attachment {
	t.Helper()
	att, err := f.u.d.Attach(context.Background(), f.name, req)
	require.NoError(t, err)
	return att
}

// wantWorkloadNS renders what workload namespace wl must hold for att
// (the workload attached from it, called wl too):
// its end of the veth with the addresses and the routes to the gateway.
func (f *fakeNet) wantWorkloadNS(wl string, att api.Attachment) string {
	lines := []string{
		"link lo device mtu 65536",
		fmt.Sprintf("link %s veth mtu %d up mac %s peer %s/%s", att.Interface, att.MTU, att.MAC, f.ns(), hostIfName(wl)),
		fmt.Sprintf("addr %s %s/%d", att.Interface, att.IPv4, att.Subnet.Bits()),
		fmt.Sprintf("addr %s %s/%d", att.Interface, att.IPv6, att.Subnet6.Bits()),
	}
	for _, r := range att.Routes {
		lines = append(lines, fmt.Sprintf("route %s via %s dev %s", r.To, r.Via, att.Interface))
	}
	return strings.Join(sortedStrings(lines), "\n")
}

// portLines are the lines the network's namespace gains for workload
// name's veth port (pinned to mac).
func (f *fakeNet) portLines(t *testing.T, name, mac string) []string {
	t.Helper()
	port := hostIfName(name)
	ns, err := f.u.host.Open(f.ns(), false)
	require.NoError(t, err)
	defer func() { _ = ns.Close() }()
	l, err := ns.Link(port)
	require.NoError(t, err)
	return []string{
		fmt.Sprintf("link %s veth mtu 1400 up mac %s master %s peer %s/znet0", port, l.MAC, bridgeName, name),
		fmt.Sprintf("fdb %s dev %s", mac, port),
	}
}

// workloadsInFirewall returns the names of the workloads the network's
// firewall admits.
func (f *fakeNet) workloadsInFirewall(t *testing.T) []string {
	t.Helper()
	r := f.u.host.Rules(f.ns())
	require.NotNil(t, r)
	var out []string
	for _, w := range r.Ports {
		out = append(out, w.IfName)
	}
	return sortedStrings(out)
}

func TestFakeAttachVeth(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	before := f.render()
	att := f.attach(t, api.AttachRequest{Name: "web", NetNS: workloadNS(u, "web")})
	assert.Equal(t, "znet0", att.Interface, "the first free name")
	assert.Equal(t, 1400, att.MTU, "the bridge's")
	assert.Equal(t, f.wantWorkloadNS("web", att), u.host.Render("web"))
	want := append(strings.Split(before, "\n"), f.portLines(t, "web", att.MAC)...)
	assert.Equal(t, strings.Join(sortedStrings(want), "\n"), f.render())
	assert.Equal(t, []string{hostIfName("web")}, f.workloadsInFirewall(t))
	b, err := os.ReadFile(filepath.Join(u.d.etcNetns, "web", "resolv.conf"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "nameserver "+att.Gateway.String()+"\n")
	wls, err := u.d.Workloads(context.Background(), "shop")
	require.NoError(t, err)
	require.Len(t, wls, 1)
	assert.Equal(t, api.StateAttached, wls[0].State)

	_, err = u.d.Attach(context.Background(), "shop", api.AttachRequest{Name: "web", NetNS: workloadNS(u, "other")})
	require.ErrorIs(t, err, api.ErrConflict, "attached already")
}

func TestFakeDetachWorkload(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	path := workloadNS(u, "web")
	before, wlBefore, rules := f.render(), u.host.Render("web"), u.host.Rules(f.ns())
	f.attach(t, api.AttachRequest{Name: "web", NetNS: path})
	require.NoError(t, u.d.Detach(context.Background(), "shop", "web"))
	assert.Equal(t, before, f.render())
	assert.Equal(t, wlBefore, u.host.Render("web"), "the veth's end went with the port")
	assert.Equal(t, rules, u.host.Rules(f.ns()))
	_, err := os.Stat(filepath.Join(u.d.etcNetns, "web", "resolv.conf"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	wls, err := u.d.Workloads(context.Background(), "shop")
	require.NoError(t, err)
	assert.Empty(t, wls)
	first := mustAddr("10.20.1.2")
	att := f.attach(t, api.AttachRequest{Name: "web2", NetNS: path, IPv4: first})
	assert.Equal(t, first, att.IPv4, "the address was given back")
}

func TestFakeAttachTap(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	before := f.render()
	att := f.attach(t, api.AttachRequest{Name: "vm1", Tap: true, MAC: "52:54:00:12:34:56", Queues: 2})
	assert.Equal(t, api.KindTap, att.Kind)
	assert.Equal(t, tapIfName("vm1"), att.Interface)
	assert.Equal(t, 2, att.Queues)
	want := append(strings.Split(before, "\n"),
		fmt.Sprintf("link %s tuntap mtu 1400 up mac fe:54:00:12:34:56 master %s", att.Interface, bridgeName),
		fmt.Sprintf("fdb 52:54:00:12:34:56 dev %s", att.Interface))
	assert.Equal(t, strings.Join(sortedStrings(want), "\n"), f.render())
	assert.Equal(t, []string{att.Interface}, f.workloadsInFirewall(t))
	wls, err := u.d.Workloads(context.Background(), "shop")
	require.NoError(t, err)
	require.Len(t, wls, 1)
	assert.Equal(t, api.StateAttached, wls[0].State)

	require.NoError(t, u.d.Detach(context.Background(), "shop", "vm1"))
	assert.Equal(t, before, f.render())
}

// attachSteps are the steps of a veth attach a failure can stop, with the
// namespace (the network's, or "wl": the workload's) they run in.
var attachSteps = []struct {
	name, op string
	inWL     bool
}{
	{"open workload namespace", netconftest.OpOpenPath, true},
	{"open network namespace", netconftest.OpOpen, false},
	{"veth", netconftest.OpAddPort, false},
	{"workload end", netconftest.OpSetLink, true},
	{"workload routes", netconftest.OpRouteVia, true},
	{"bridge end up", netconftest.OpSetLink, false},
	{"pin", netconftest.OpPin, false},
	{"firewall", netconftest.OpInstall, false},
}

func TestFakeAttachRollback(t *testing.T) {
	for _, tt := range attachSteps {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t, newNodeID(t))
			f := newFakeNet(t, u, "shop")
			f.apply(t, 1)
			f.attach(t, api.AttachRequest{Name: "db", NetNS: workloadNS(u, "db")})
			path := workloadNS(u, "web")
			before, wlBefore, rules := f.render(), u.host.Render("web"), u.host.Rules(f.ns())
			in := f.ns()
			if tt.inWL {
				in = "web"
			}
			u.host.FailNextIn(in, tt.op, errInjected)
			_, err := u.d.Attach(context.Background(), "shop", api.AttachRequest{Name: "web", NetNS: path})
			require.Error(t, err)
			assert.Equal(t, before, f.render(), "the bridge port is gone")
			assert.Equal(t, wlBefore, u.host.Render("web"), "nothing left in the workload")
			assert.Equal(t, rules, u.host.Rules(f.ns()), "the firewall as before")
			_, err = os.Stat(filepath.Join(u.d.etcNetns, "web"))
			assert.ErrorIs(t, err, os.ErrNotExist, "no resolv.conf")
			wls, err := u.d.Workloads(context.Background(), "shop")
			require.NoError(t, err)
			require.Len(t, wls, 1, "the state as before")
			assert.Equal(t, "db", wls[0].Name)

			att := f.attach(t, api.AttachRequest{Name: "web", NetNS: path})
			assert.Equal(t, "10.20.1.3", att.IPv4.String(), "the address was given back")
		})
	}
}

func TestFakeReattachReplacedNamespace(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	path := workloadNS(u, "web")
	first := f.attach(t, api.AttachRequest{Name: "web", NetNS: path})
	// The workload's namespace is deleted and made again under the same
	// name: the veth went with the old one.
	u.host.Remove("web")
	u.host.Add("web", nil)
	wls, err := u.d.Workloads(context.Background(), "shop")
	require.NoError(t, err)
	require.Len(t, wls, 1)
	assert.Equal(t, api.StateNetNSReplaced, wls[0].State)

	att := f.attach(t, api.AttachRequest{Name: "web", NetNS: path})
	assert.Equal(t, first.IPv4, att.IPv4, "its own address again")
	assert.Equal(t, f.wantWorkloadNS("web", att), u.host.Render("web"))
	assert.Contains(t, f.render(), f.portLines(t, "web", att.MAC)[0])
	assert.Equal(t, []string{hostIfName("web")}, f.workloadsInFirewall(t))
	wls, err = u.d.Workloads(context.Background(), "shop")
	require.NoError(t, err)
	require.Len(t, wls, 1)
	assert.Equal(t, api.StateAttached, wls[0].State)
}

// TestFakeAttachRefusesOwnNamespaces: a veth into the node's namespace or
// into a network's would bridge the network there.
func TestFakeAttachRefusesOwnNamespaces(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	before, under := f.render(), u.host.Render(netconftest.UnderlayName)
	for _, path := range []string{namespaces.Path(f.ns()), "/proc/self/ns/net"} {
		_, err := u.d.Attach(context.Background(), "shop", api.AttachRequest{Name: "web", NetNS: path})
		require.ErrorIs(t, err, api.ErrInvalid, path)
		assert.Contains(t, err.Error(), "namespace", path)
	}
	assert.Equal(t, before, f.render())
	assert.Equal(t, under, u.host.Render(netconftest.UnderlayName))
}

func TestFakeMTUFollow(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	f.attach(t, api.AttachRequest{Name: "web", NetNS: workloadNS(u, "web")})
	tp := f.attach(t, api.AttachRequest{Name: "vm1", Tap: true})
	s := f.spec(2)
	s.MTU = 1380
	_, err := u.d.Apply(context.Background(), s)
	require.NoError(t, err)
	mtus := map[string]int{}
	for _, ns := range []string{f.ns(), "web"} {
		for _, line := range strings.Split(u.host.Render(ns), "\n") {
			var name, kind string
			var mtu int
			if _, err := fmt.Sscanf(line, "link %s %s mtu %d", &name, &kind, &mtu); err == nil && name != "lo" {
				mtus[ns+"/"+name] = mtu
			}
		}
	}
	assert.Equal(t, map[string]int{
		f.ns() + "/" + bridgeName:        1380,
		f.ns() + "/" + f.ifname():        1380,
		f.ns() + "/" + hostIfName("web"): 1380,
		f.ns() + "/" + tp.Interface:      1380,
		"web/znet0":                      1380,
	}, mtus)
	att, err := u.d.Workload(context.Background(), "shop", "web")
	require.NoError(t, err)
	assert.Equal(t, 1380, att.MTU)
}

// TestFakeRecoverRepairsWorkloads: after a reboot that took the network's
// namespace (and the veths with it), recover plumbs the workloads again
// whose path still names the namespace they were attached to, makes the
// taps again, and records the others as replaced without touching them.
func TestFakeRecoverRepairsWorkloads(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	f.attach(t, api.AttachRequest{Name: "web", NetNS: workloadNS(u, "web")})
	f.attach(t, api.AttachRequest{Name: "vm1", Tap: true})
	withoutDB := f.render()
	db := f.attach(t, api.AttachRequest{Name: "db", NetNS: workloadNS(u, "db")})
	web := u.host.Render("web")
	u.d.Close()
	u.host.Remove(f.ns())
	u.backend.Crash(f.ifname())
	u.host.Remove("db")
	u.host.Add("db", nil)

	d := u.newDaemon(t)
	require.NoError(t, d.Recover(context.Background()))
	assert.Equal(t, withoutDB, f.render(), "web's veth and the tap again, not db's")
	assert.Equal(t, web, u.host.Render("web"))
	assert.Equal(t, "link lo device mtu 65536", u.host.Render("db"), "a namespace that is not db's is not touched")
	wls, err := d.Workloads(context.Background(), "shop")
	require.NoError(t, err)
	states := map[string]string{}
	for _, w := range wls {
		states[w.Name] = w.State
	}
	assert.Equal(t, map[string]string{"web": api.StateAttached, "vm1": api.StateAttached, "db": api.StateNetNSReplaced}, states)
	r := u.host.Rules(f.ns())
	require.NotNil(t, r)
	assert.Len(t, r.Ports, 3, "the firewall still admits db's address (%s) until it is detached", db.IPv4)
}
