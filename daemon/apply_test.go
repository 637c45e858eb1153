package daemon

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/ipam"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/overlay/overlaytest"
	"github.com/znet/znet/spec"
)

// step runs one step of a scenario and stops the scenario if it failed.
func step(t *testing.T, name string, fn func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, fn) {
		t.FailNow()
	}
}

// testCtx returns a context bounded well below the package's time budget.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// member is a spec entry of a node that exists only as a key.
func member(t *testing.T, id, subnet string) spec.Node {
	return spec.Node{ID: id, Subnet: mustPrefix(subnet), PublicKey: publicKey(t)}
}

// specOf returns generation gen of network name with self and others.
func specOf(name string, gen uint64, self spec.Node, others ...spec.Node) *spec.Spec {
	return &spec.Spec{
		Name: name, Generation: gen, IPRange: mustPrefix("10.20.0.0/16"),
		Nodes: append([]spec.Node{self}, others...),
	}
}

// subnetsFor returns the subnets of node in s.
func subnetsFor(t *testing.T, s *spec.Spec, node spec.Node) ipam.Subnets {
	t.Helper()
	c := s.Clone()
	c.SetDefaults()
	sub, err := ipam.NodeSubnets(c.IPRange, c.IPv6Range, node.Subnet)
	require.NoError(t, err)
	return sub
}

// peersOf returns the peers on network's device as "key allowed-ips...".
func (n *testNode) peersOf(t *testing.T, network string) []string {
	t.Helper()
	dev, err := n.real.Show(context.Background(), n.dev(network))
	require.NoError(t, err)
	var out []string
	for _, p := range dev.Peers {
		var ips []string
		for _, a := range p.AllowedIPs {
			ips = append(ips, prefixOf(&a).String())
		}
		sort.Strings(ips)
		out = append(out, fmt.Sprint(p.PublicKey.String(), " ", ips))
	}
	sort.Strings(out)
	return out
}

func peerLine(key string, prefixes ...netip.Prefix) string {
	var ips []string
	for _, p := range prefixes {
		ips = append(ips, p.String())
	}
	sort.Strings(ips)
	return fmt.Sprint(key, " ", ips)
}

// TestApplyLifecycle walks one network through its generations on the
// real userspace backend: create, re-apply, add a member, refuse a stale
// generation, remove the member.
func TestApplyLifecycle(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.use("shop")
	res, err := n.d.Reserve(ctx, "shop")
	require.NoError(t, err)
	self := spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24"), Endpoint: fmt.Sprintf("198.18.0.1:%d", res.ListenPort)}
	other := member(t, "node2", "10.20.2.0/24")
	ns := n.nsName("shop")
	wg := n.dev("shop").IfName
	var pid int

	step(t, "first apply builds the network", func(t *testing.T) {
		r, err := n.d.Apply(ctx, specOf("shop", 1, self))
		require.NoError(t, err)
		assert.Equal(t, api.ApplyResult{Name: "shop", Generation: 1, Changed: true}, r)
		require.True(t, namespaces.Exists(ns), "namespace %s", ns)

		sub := subnetsFor(t, specOf("shop", 1, self), self)
		v := view(t, ns)
		assert.Equal(t, link{name: bridgeName, up: true, mtu: 1420,
			addrs: []netip.Prefix{netip.PrefixFrom(sub.Gateway4, 24), netip.PrefixFrom(sub.Gateway6, 64)}}, v.links[bridgeName])
		assert.Equal(t, link{name: wg, up: true, mtu: 1420}, v.links[wg])
		assert.True(t, v.links["lo"].up, "lo is up")
		assert.Equal(t, []string{"bridge znet", "inet znet"}, v.tables)
		assert.Empty(t, v.routeStrings(wg), "no peers, no routes")
		assert.Equal(t, "1", sysctl(t, ns, "net/ipv4/ip_forward"))
		assert.Equal(t, "1", sysctl(t, ns, "net/ipv6/conf/all/forwarding"))
		if _, err := os.Stat("/proc/sys/net/bridge"); err == nil { // br_netfilter is loaded
			for _, k := range bridgeSysctls {
				assert.Equal(t, "0", sysctl(t, ns, k), "the bridge skips the IP hooks")
			}
		}

		st, err := n.d.Status(ctx, "shop")
		require.NoError(t, err)
		require.Len(t, st, 1)
		pid = st[0].PID
		require.Positive(t, pid)
		nsID, err := namespaces.ID(ns)
		require.NoError(t, err)
		assert.Equal(t, nsID, netnsOf(t, pid), "the data plane lives in the network's namespace")
		assert.Equal(t, uint64(1), st[0].Generation)
		assert.Equal(t, "userspace", st[0].Backend)
		assert.Equal(t, sub.Gateway4, st[0].Gateway)
		assert.Empty(t, st[0].Problems)

		dev, err := n.real.Show(ctx, n.dev("shop"))
		require.NoError(t, err)
		assert.Equal(t, res.PublicKey, dev.PublicKey.String(), "the reserved key")
		assert.Equal(t, res.ListenPort, dev.ListenPort, "the reserved port")

		det, err := n.d.Network(ctx, "shop")
		require.NoError(t, err)
		require.NotNil(t, det.Spec)
		me, _ := det.Spec.Node(n.id)
		assert.Equal(t, res.PublicKey, me.PublicKey, "the stored spec carries the reserved key")
		assert.Zero(t, det.Spec.MTU, "no mtu: each node derives its own")
	})

	step(t, "the same spec again changes nothing", func(t *testing.T) {
		configures := n.backend.count(overlaytest.OpConfigure)
		r, err := n.d.Apply(ctx, specOf("shop", 1, self))
		require.NoError(t, err)
		assert.False(t, r.Changed)
		assert.Equal(t, configures, n.backend.count(overlaytest.OpConfigure), "the device is not configured again")
		assert.Equal(t, pid, n.real.PID(n.dev("shop")), "same data plane")
	})

	step(t, "a new member becomes a peer with a route", func(t *testing.T) {
		s := specOf("shop", 2, self, other)
		r, err := n.d.Apply(ctx, s)
		require.NoError(t, err)
		assert.Equal(t, api.ApplyResult{Name: "shop", Generation: 2, Changed: true}, r)
		sub := subnetsFor(t, s, other)
		assert.Equal(t, []string{peerLine(other.PublicKey, sub.V4, sub.V6)}, n.peersOf(t, "shop"))
		assert.Equal(t, []string{
			sub.V4.String() + " dev " + wg,
			sub.V6.String() + " dev " + wg,
		}, sortedStrings(view(t, ns).routeStrings(wg)))
		assert.Equal(t, pid, n.real.PID(n.dev("shop")), "same data plane")

		st, err := n.d.Status(ctx, "shop")
		require.NoError(t, err)
		require.Len(t, st[0].Peers, 1)
		assert.Equal(t, "node2", st[0].Peers[0].Name)
		assert.ElementsMatch(t, []netip.Prefix{sub.V4, sub.V6}, st[0].Peers[0].AllowedIPs)
		assert.Contains(t, st[0].Problems, "peer node2: no handshake yet")
	})

	step(t, "a stale generation is refused and changes nothing", func(t *testing.T) {
		before := n.peersOf(t, "shop")
		configures := n.backend.count(overlaytest.OpConfigure)
		_, err := n.d.Apply(ctx, specOf("shop", 1, self))
		requireAPIError(t, err, http.StatusConflict, "generation")
		det, err := n.d.Network(ctx, "shop")
		require.NoError(t, err)
		assert.Equal(t, uint64(2), det.Spec.Generation)
		assert.Equal(t, before, n.peersOf(t, "shop"))
		assert.Equal(t, configures, n.backend.count(overlaytest.OpConfigure))
	})

	step(t, "removing the member removes its peer and route", func(t *testing.T) {
		r, err := n.d.Apply(ctx, specOf("shop", 3, self))
		require.NoError(t, err)
		assert.True(t, r.Changed)
		assert.Empty(t, n.peersOf(t, "shop"))
		assert.Empty(t, view(t, ns).routeStrings(wg))
		assert.Equal(t, pid, n.real.PID(n.dev("shop")), "same data plane")
	})

	step(t, "the same generation with other content is refused", func(t *testing.T) {
		_, err := n.d.Apply(ctx, specOf("shop", 3, self, other))
		requireAPIError(t, err, http.StatusConflict, "generation")
		assert.Empty(t, n.peersOf(t, "shop"))
	})

	step(t, "delete removes everything", func(t *testing.T) {
		require.NoError(t, n.d.DeleteNetwork(ctx, "shop", false))
		assert.False(t, namespaces.Exists(ns))
		assert.Zero(t, n.real.PID(n.dev("shop")))
		assert.Empty(t, n.dataplanes(t))
		_, err := n.d.Network(ctx, "shop")
		requireAPIError(t, err, http.StatusNotFound, "name")
		requireAPIError(t, n.d.DeleteNetwork(ctx, "shop", false), http.StatusNotFound, "name")
	})
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
