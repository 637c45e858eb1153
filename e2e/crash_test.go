package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/znet/znet/api"
	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
)

// crashRounds is how many times TestCrashAnywhere kills znetd mid-call.
const crashRounds = 50

// snapshot is what a node says of itself through its API: its networks,
// and the workloads and access peers of each.
type snapshot struct {
	nets   map[string]api.NetworkSummary
	wls    map[string]map[string]api.Workload
	access map[string]map[string]api.AccessPeer
}

// takeSnapshot lists everything node knows.
func takeSnapshot(t *testing.T, c *api.Client) snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s := snapshot{nets: map[string]api.NetworkSummary{}, wls: map[string]map[string]api.Workload{}, access: map[string]map[string]api.AccessPeer{}}
	nets, err := c.Networks(ctx)
	require.NoError(t, err)
	for _, n := range nets {
		s.nets[n.Name] = n
		s.wls[n.Name] = map[string]api.Workload{}
		s.access[n.Name] = map[string]api.AccessPeer{}
		wls, err := c.Workloads(ctx, n.Name)
		require.NoError(t, err)
		for _, w := range wls {
			s.wls[n.Name][w.Name] = w
		}
		acc, err := c.AccessPeers(ctx, n.Name)
		require.NoError(t, err)
		for _, a := range acc {
			s.access[n.Name][a.Name] = a
		}
	}
	return s
}

// linksIn returns the links of the named namespace by name, with their
// IPv4 addresses.
func linksIn(t *testing.T, ns string) map[string][]netip.Addr {
	t.Helper()
	h, err := namespaces.Open(ns)
	require.NoError(t, err)
	defer func() { _ = h.Close() }()
	nh, err := netlink.NewHandleAt(h)
	require.NoError(t, err)
	defer nh.Close()
	links, err := nh.LinkList()
	require.NoError(t, err)
	out := map[string][]netip.Addr{}
	for _, l := range links {
		addrs, err := nh.AddrList(l, netlink.FAMILY_V4)
		require.NoError(t, err)
		out[l.Attrs().Name] = nil
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				out[l.Attrs().Name] = append(out[l.Attrs().Name], ip.Unmap())
			}
		}
	}
	return out
}

// dataplaneCount counts the data-plane processes of lab l.
func dataplaneCount(l *lab.Lab) int {
	n := 0
	for _, p := range leftoverProcesses(l.Name) {
		if strings.Contains(p, "dataplane") {
			n++
		}
	}
	return n
}

// checkConsistent checks what must hold of node whatever happened to it:
// no IPv4 address held twice in a network, no workload half attached
// (wlNS are every workload namespace the test made), exactly one namespace
// and one live data plane per applied network and nothing else of the
// node's.
func checkConsistent(t *testing.T, l *lab.Lab, node lab.Node, s snapshot, wlNS []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	applied := []string{}
	for name, n := range s.nets {
		if n.State == "applied" {
			applied = append(applied, namespaces.Name(node.ID, name))
		}
		held := map[netip.Addr]string{}
		hold := func(addr netip.Addr, who string) {
			if other, ok := held[addr]; ok {
				t.Errorf("network %s: %s held by %s and %s", name, addr, other, who)
			}
			held[addr] = who
		}
		for _, w := range s.wls[name] {
			hold(w.IPv4, "workload/"+w.Name)
		}
		for _, a := range s.access[name] {
			hold(a.IPv4, "access/"+a.Name)
		}
	}
	sort.Strings(applied)
	have, err := namespaces.List(namespaces.NodePrefix(node.ID))
	require.NoError(t, err)
	sort.Strings(have)
	// ElementsMatch: no applied network (every one deleted by the run) and
	// no namespace are the same, an empty list and a nil one.
	assert.ElementsMatch(t, applied, have, "the node's namespaces are those of its applied networks")

	st, err := node.Client().Status(ctx, "")
	require.NoError(t, err)
	live := 0
	for _, ns := range st {
		if s.nets[ns.Name].State != "applied" {
			continue
		}
		for _, p := range ns.Problems {
			assert.NotContains(t, p, "namespace", "network %s: %s", ns.Name, p)
		}
		if assert.NotZero(t, ns.PID, "network %s has a data plane", ns.Name) {
			if assert.NoError(t, syscall.Kill(ns.PID, 0), "data plane of %s is alive", ns.Name) {
				live++
			}
		}
		// The bridge side of every workload whose namespace exists, and
		// nothing else.
		var veths int
		for name := range linksIn(t, namespaces.Name(node.ID, ns.Name)) {
			if strings.HasPrefix(name, "vw") {
				veths++
			}
		}
		want := 0
		for _, w := range s.wls[ns.Name] {
			if w.State == api.StateAttached {
				want++
			}
		}
		assert.Equal(t, want, veths, "network %s: bridge ports", ns.Name)
	}
	assert.Equal(t, live, dataplaneCount(l), "one data plane per applied network, none left over")

	// Every listed workload has its address in its namespace; no znet
	// interface is there that no listed workload owns.
	owned := map[string]map[string]netip.Addr{} // netns path -> ifname -> ipv4
	for _, wls := range s.wls {
		for _, w := range wls {
			if owned[w.NetNS] == nil {
				owned[w.NetNS] = map[string]netip.Addr{}
			}
			owned[w.NetNS][w.Interface] = w.IPv4
		}
	}
	for _, ns := range wlNS {
		links := linksIn(t, ns)
		for ifname, addr := range owned[namespaces.Path(ns)] {
			assert.Contains(t, links[ifname], addr, "workload namespace %s: %s has %s", ns, ifname, addr)
		}
		for ifname := range links {
			if strings.HasPrefix(ifname, "znet") {
				_, ok := owned[namespaces.Path(ns)][ifname]
				assert.True(t, ok, "workload namespace %s: %s belongs to no listed workload", ns, ifname)
			}
		}
	}
}

// killZnetd kills node's znetd with SIGKILL and waits until its API socket
// refuses connections (lab.KillNode does both).
func killZnetd(t *testing.T, l *lab.Lab, node lab.Node) {
	t.Helper()
	require.NoError(t, l.KillNode(node, syscall.SIGKILL))
}

// crashOp is one call a round makes, and what it may change.
type crashOp struct {
	kind    string // apply-new, apply-gen, attach, detach, access, delete
	network string
	object  string // workload or access peer name
	gen     uint64 // the generation apply-gen applies
	call    func(ctx context.Context) error
}

// TestCrashAnywhere starts a call, kills znetd -9 at a random moment during
// it and restarts it, crashRounds times; after every round the node is
// consistent and every network, workload and access peer is as before the
// call or as the call left it (as it left it if the call answered 2xx).
func TestCrashAnywhere(t *testing.T) {
	l := newLab(t, 1)
	node := l.Nodes[0]
	c := node.Client()
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))

	_, err := c.ApplyRaw(ctx, []byte(oneNodeSpec("base", node.ID, 1)))
	require.NoError(t, err)
	pa := attach(t, node, "base", "pa")
	pb := attach(t, node, "base", "pb")
	// mut has an endpoint, so it takes access peers.
	res, err := c.Reserve(ctx, "mut")
	require.NoError(t, err)
	mutSpec := func(gen uint64) []byte {
		return fmt.Appendf(nil, `{"name":"mut","generation":%d,"ip_range":"10.30.0.0/16","nodes":[{"id":%q,"subnet":"10.30.1.0/24","endpoint":"%s:%d"}]}`,
			gen, node.ID, node.Underlay, res.ListenPort)
	}
	_, err = c.ApplyRaw(ctx, mutSpec(1))
	require.NoError(t, err)
	wlNS := []string{pa.ns, pb.ns}
	pool := make([]string, 6)
	for i := range pool {
		pool[i] = workloadNS(t, fmt.Sprintf("p%d", i))
		wlNS = append(wlNS, pool[i])
	}

	t.Run("a veth of an attach that crashed before it committed goes at restart", func(t *testing.T) {
		// What Attach leaves when killed between plumbing and committing:
		// a port on the network's bridge whose peer is in the workload.
		netNS, err := namespaces.Open(namespaces.Name(node.ID, "mut"))
		require.NoError(t, err)
		defer func() { _ = netNS.Close() }()
		wl, err := namespaces.Open(pool[0])
		require.NoError(t, err)
		defer func() { _ = wl.Close() }()
		h, err := netlink.NewHandleAt(netNS)
		require.NoError(t, err)
		defer h.Close()
		require.NoError(t, h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vw0123456789"}, PeerName: "znet0", PeerNamespace: netlink.NsFd(wl)}))
		require.Contains(t, linksIn(t, pool[0]), "znet0")
		killZnetd(t, l, node)
		require.NoError(t, l.StartNode(ctx, node))
		assert.NotContains(t, linksIn(t, pool[0]), "znet0")
		assert.NotContains(t, linksIn(t, namespaces.Name(node.ID, "mut")), "vw0123456789")
	})

	// pick chooses a call that can change something, given the state.
	pick := func(round int, before snapshot) crashOp {
		var created []string
		for name := range before.nets {
			if strings.HasPrefix(name, "c") {
				created = append(created, name)
			}
		}
		sort.Strings(created)
		switch kinds := []string{"apply-new", "apply-gen", "attach", "detach", "access", "delete"}; kinds[rng.IntN(len(kinds))] {
		case "apply-gen":
			gen := before.nets["mut"].Generation + 1
			return crashOp{kind: "apply-gen", network: "mut", gen: gen, call: func(ctx context.Context) error {
				_, err := c.ApplyRaw(ctx, mutSpec(gen))
				return err
			}}
		case "attach", "detach":
			i := rng.IntN(len(pool))
			name := fmt.Sprintf("p%d", i)
			if _, ok := before.wls["mut"][name]; ok {
				return crashOp{kind: "detach", network: "mut", object: name, call: func(ctx context.Context) error {
					return c.Detach(ctx, "mut", name)
				}}
			}
			return crashOp{kind: "attach", network: "mut", object: name, call: func(ctx context.Context) error {
				_, err := c.Attach(ctx, "mut", api.AttachRequest{Name: name, NetNS: namespaces.Path(pool[i])})
				return err
			}}
		case "access":
			name := fmt.Sprintf("a%d", round)
			key := wgKey(t)
			return crashOp{kind: "access", network: "mut", object: name, call: func(ctx context.Context) error {
				_, err := c.AddAccess(ctx, "mut", api.AccessRequest{Name: name, PublicKey: key})
				return err
			}}
		}
		// apply-new and delete: keep at most two extra networks around.
		if len(created) >= 2 || (len(created) > 0 && rng.IntN(2) == 0) {
			name := created[rng.IntN(len(created))]
			return crashOp{kind: "delete", network: name, call: func(ctx context.Context) error {
				return c.DeleteNetwork(ctx, name, true)
			}}
		}
		name := fmt.Sprintf("c%d", round)
		return crashOp{kind: "apply-new", network: name, gen: 1, call: func(ctx context.Context) error {
			_, err := c.ApplyRaw(ctx, []byte(oneNodeSpec(name, node.ID, 1)))
			return err
		}}
	}

	start := time.Now()
	counts := map[string]int{}
	for round := range crashRounds {
		before := takeSnapshot(t, c)
		op := pick(round, before)
		delay := time.Duration(rng.Int64N(int64(30*time.Millisecond) + 1))
		done := make(chan error, 1)
		go func() { done <- op.call(ctx) }()
		time.Sleep(delay)
		killZnetd(t, l, node)
		callErr := <-done
		require.NoError(t, l.StartNode(ctx, node))
		after := takeSnapshot(t, c)
		ok := callErr == nil
		counts[fmt.Sprintf("%s ok=%v", op.kind, ok)]++
		if ok := t.Run(fmt.Sprintf("round %d %s %s %s after %s", round, op.kind, op.network, op.object, delay.Round(time.Millisecond)), func(t *testing.T) {
			var apiErr *api.Error
			if errors.As(callErr, &apiErr) && apiErr.Kind != nil {
				t.Errorf("the call was refused, not cut off: %v", callErr)
			}
			checkTransition(t, op, ok, before, after)
			checkConsistent(t, l, node, after, wlNS)
			assert.True(t, pingOK(pa.ns, pb.ipv4), "pa -> pb")
			assert.True(t, pingOK(pb.ns, pa.ipv4), "pb -> pa")
		}); !ok {
			break
		}
	}
	t.Logf("%d rounds in %s: %v", crashRounds, time.Since(start).Round(time.Second), counts)
}

// checkTransition checks that only op's object changed, to what op makes
// of it (which it must be when answered is set) or not at all.
func checkTransition(t *testing.T, op crashOp, answered bool, before, after snapshot) {
	t.Helper()
	names := map[string]bool{}
	for name := range before.nets {
		names[name] = true
	}
	for name := range after.nets {
		names[name] = true
	}
	for name := range names {
		b, inBefore := before.nets[name]
		a, inAfter := after.nets[name]
		switch {
		case name != op.network:
			if assert.Equal(t, inBefore, inAfter, "network %s untouched", name) && inAfter {
				assert.Equal(t, b.Generation, a.Generation, "network %s untouched", name)
			}
		case op.kind == "apply-new":
			assert.False(t, inBefore)
			if answered {
				assert.True(t, inAfter && a.Generation == 1 && a.State == "applied", "%s applied: %+v", name, a)
			} else if inAfter {
				// A reservation made for the first apply may be left.
				assert.Contains(t, []uint64{0, 1}, a.Generation, "%s: %+v", name, a)
			}
		case op.kind == "apply-gen":
			require.True(t, inAfter)
			if answered {
				assert.Equal(t, op.gen, a.Generation)
			} else {
				assert.Contains(t, []uint64{op.gen - 1, op.gen}, a.Generation)
			}
		case op.kind == "delete":
			if answered {
				assert.False(t, inAfter, "%s deleted", name)
			} else if inAfter {
				assert.Equal(t, b.Generation, a.Generation)
			}
		default:
			assert.True(t, inAfter)
			assert.Equal(t, b.Generation, a.Generation)
		}
	}
	for name, wls := range after.wls {
		old := before.wls[name]
		for _, w := range wls {
			if o, ok := old[w.Name]; ok {
				assert.Equal(t, o.IPv4, w.IPv4, "workload %s/%s keeps its address", name, w.Name)
			}
		}
		for _, a := range after.access[name] {
			if o, ok := before.access[name][a.Name]; ok {
				assert.Equal(t, o.IPv4, a.IPv4, "access peer %s/%s keeps its address", name, a.Name)
			}
		}
		if name == op.network && op.kind != "apply-new" && op.kind != "apply-gen" {
			continue
		}
		if name == op.network && op.kind == "apply-new" {
			assert.Empty(t, wls)
			continue
		}
		assert.Equal(t, keys(before.wls[name]), keys(wls), "workloads of %s untouched", name)
		assert.Equal(t, keys(before.access[name]), keys(after.access[name]), "access peers of %s untouched", name)
	}
	if op.network != "mut" || op.object == "" {
		return
	}
	_, had := before.wls["mut"][op.object]
	_, has := after.wls["mut"][op.object]
	if op.kind == "access" {
		had = false
		_, has = after.access["mut"][op.object]
	}
	want := op.kind != "detach"
	if answered {
		assert.Equal(t, want, has, "%s %s answered", op.kind, op.object)
	} else {
		assert.Contains(t, []bool{had, want}, has)
	}
	others := func(m map[string]api.Workload) []string {
		return slices.DeleteFunc(keys(m), func(s string) bool { return s == op.object })
	}
	assert.Equal(t, others(before.wls["mut"]), others(after.wls["mut"]), "other workloads of mut untouched")
	if op.kind == "access" {
		var bs, as []string
		for k := range before.access["mut"] {
			bs = append(bs, k)
		}
		for k := range after.access["mut"] {
			if k != op.object {
				as = append(as, k)
			}
		}
		sort.Strings(bs)
		sort.Strings(as)
		assert.Equal(t, bs, as, "other access peers of mut untouched")
	}
}

func keys[V any](m map[string]V) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
