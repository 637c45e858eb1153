package daemon

import (
	"context"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
	"github.com/znet/znet/tap"
)

// linkNames returns the names of the links in namespace path, sorted.
func linkNames(t *testing.T, path string) []string {
	t.Helper()
	return slices.Sorted(maps.Keys(view(t, path).links))
}

// waitLinks waits until namespace path has exactly the links want (the
// kernel removes a veth's far end asynchronously once its namespace dies).
func waitLinks(t *testing.T, path string, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(linkNames(t, path), want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, want, linkNames(t, path), "links in %s", path)
}

// allocated returns the addresses the state has handed out in network.
func (n *testNode) allocated(t *testing.T, network string) map[netip.Addr]string {
	t.Helper()
	var out map[netip.Addr]string
	require.NoError(t, n.store.View(func(tx *store.Tx) error {
		nw, err := tx.Network(network)
		if err != nil {
			return err
		}
		out = nw.Addrs.Allocated()
		return nil
	}))
	return out
}

func resolvConf(ns string) string { return filepath.Join("/etc/netns", ns, "resolv.conf") }

// TestWorkloads attaches and detaches workloads on the real backend.
func TestWorkloads(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.use("shop")
	n.use("blog")
	// A /29: addresses .2 to .6, so the reuse order shows after five.
	self := spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/29")}
	shop := specOf("shop", 1, self)
	_, err := n.d.Apply(ctx, shop)
	require.NoError(t, err)
	blogSelf := spec.Node{ID: n.id, Subnet: mustPrefix("10.30.1.0/24")}
	blog := specOf("blog", 1, blogSelf)
	blog.IPRange = mustPrefix("10.30.0.0/16")
	_, err = n.d.Apply(ctx, blog)
	require.NoError(t, err)
	sub := subnetsFor(t, shop, self)
	netNS := n.nsName("shop")
	ws1 := n.newWorkloadNS(t)
	path1 := namespaces.Path(ws1)

	step(t, "attach plumbs the workload", func(t *testing.T) {
		a, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "web", NetNS: path1})
		require.NoError(t, err)
		web4 := mustAddr("10.20.1.2")
		c := shop.Clone()
		c.SetDefaults()
		webMAC := tap.MAC("shop", "web").String()
		assert.Equal(t, api.Attachment{
			IPv4: web4, IPv6: sub.Twin(web4),
			Gateway: sub.Gateway4, Gateway6: sub.Gateway6,
			DNS:       []netip.Addr{sub.Gateway4, sub.Gateway6},
			Interface: "znet0",
			Kind:      api.KindNetNS, NetNS: path1, MAC: webMAC, MTU: 1420,
			Subnet: sub.V4, Subnet6: sub.V6, Domain: "shop.internal",
			Routes: []api.Route{{To: c.IPRange, Via: sub.Gateway4}, {To: c.IPv6Range, Via: sub.Gateway6}},
		}, a)

		v := view(t, ws1)
		assert.Equal(t, link{name: "znet0", up: true, mtu: 1420,
			addrs: []netip.Prefix{netip.PrefixFrom(web4, 29), netip.PrefixFrom(sub.Twin(web4), 64)}}, v.links["znet0"])
		assert.Equal(t, sortedStrings([]string{
			"10.20.0.0/16 via 10.20.1.1 dev znet0",
			c.IPv6Range.String() + " via " + sub.Gateway6.String() + " dev znet0",
		}), v.routeStrings("znet0"))
		assert.False(t, v.hasDefault(), "no default route: %v", v.routes)

		hv := view(t, netNS)
		host := hostIfName("web")
		assert.True(t, hv.links[host].up)
		assert.Equal(t, 1420, hv.links[host].mtu)
		assert.Contains(t, hv.chains, "bridge znet port-"+host, "the firewall admits the workload's port")

		b, err := os.ReadFile(resolvConf(ws1))
		require.NoError(t, err)
		assert.Contains(t, string(b), "\nnameserver 10.20.1.1\n")
		assert.Contains(t, string(b), "\nsearch shop.internal\n")

		wls, err := n.d.Workloads(ctx, "shop")
		require.NoError(t, err)
		assert.Equal(t, []api.Workload{{Name: "web", IPv4: web4, IPv6: sub.Twin(web4), NetNS: path1,
			Interface: "znet0", State: api.StateAttached, Kind: api.KindNetNS, MAC: webMAC}}, wls)
	})

	step(t, "refused attaches leave nothing behind", func(t *testing.T) {
		hostLinks := linkNames(t, netNS)
		wlLinks := linkNames(t, ws1)
		ws2 := n.newWorkloadNS(t)
		tests := []struct {
			name   string
			req    api.AttachRequest
			status int
			field  string
		}{
			{"ipv4 taken", api.AttachRequest{Name: "db", NetNS: namespaces.Path(ws2), IPv4: mustAddr("10.20.1.2")}, http.StatusConflict, "ipv4"},
			{"ipv4 outside the subnet", api.AttachRequest{Name: "db", NetNS: namespaces.Path(ws2), IPv4: mustAddr("10.20.1.9")}, http.StatusBadRequest, "ipv4"},
			{"ipv4 is the gateway", api.AttachRequest{Name: "db", NetNS: namespaces.Path(ws2), IPv4: mustAddr("10.20.1.1")}, http.StatusBadRequest, "ipv4"},
			{"ipv4 is the broadcast address", api.AttachRequest{Name: "db", NetNS: namespaces.Path(ws2), IPv4: mustAddr("10.20.1.7")}, http.StatusBadRequest, "ipv4"},
			{"ipv4 is the network address", api.AttachRequest{Name: "db", NetNS: namespaces.Path(ws2), IPv4: mustAddr("10.20.1.0")}, http.StatusBadRequest, "ipv4"},
			{"duplicate name", api.AttachRequest{Name: "web", NetNS: namespaces.Path(ws2)}, http.StatusConflict, "name"},
			{"missing netns", api.AttachRequest{Name: "db", NetNS: namespaces.Path("zt-dm-missing-" + testutil.RandomHex(t, 4))}, http.StatusBadRequest, "netns"},
			{"ifname taken in the workload", api.AttachRequest{Name: "db", NetNS: path1, IfName: "znet0"}, http.StatusConflict, "ifname"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := n.d.Attach(ctx, "shop", tt.req)
				requireAPIError(t, err, tt.status, tt.field)
			})
		}
		assert.Equal(t, hostLinks, linkNames(t, netNS))
		assert.Equal(t, wlLinks, linkNames(t, ws1))
		assert.Equal(t, []string{"lo"}, linkNames(t, ws2))
		assert.Equal(t, map[netip.Addr]string{mustAddr("10.20.1.2"): "workload/web"}, n.allocated(t, "shop"))
		_, err := os.Stat(filepath.Join("/etc/netns", ws2))
		assert.ErrorIs(t, err, os.ErrNotExist, "no resolv.conf for a refused attach")
	})

	step(t, "a namespace on two networks gets znet0 then znet1", func(t *testing.T) {
		a, err := n.d.Attach(ctx, "blog", api.AttachRequest{Name: "web", NetNS: path1})
		require.NoError(t, err)
		assert.Equal(t, "znet1", a.Interface)
		assert.Equal(t, mustAddr("10.30.1.2"), a.IPv4)
		v := view(t, ws1)
		assert.Equal(t, []netip.Prefix{mustPrefix("10.30.1.2/24"), netip.PrefixFrom(a.IPv6, 64)}, v.links["znet1"].addrs)
		assert.Contains(t, v.routeStrings("znet1"), "10.30.0.0/16 via 10.30.1.1 dev znet1")
		assert.Contains(t, v.routeStrings("znet0"), "10.20.0.0/16 via 10.20.1.1 dev znet0", "the first network's route stays")

		require.NoError(t, n.d.Detach(ctx, "blog", "web"))
		v = view(t, ws1)
		assert.NotContains(t, v.links, "znet1")
		assert.Contains(t, v.links, "znet0", "the other network's interface stays")
		assert.Empty(t, n.allocated(t, "blog"))
	})

	step(t, "detach frees the address, oldest release reused first", func(t *testing.T) {
		ws := n.newWorkloadNS(t)
		for i, name := range []string{"c2", "c3", "c4", "c5"} {
			a, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: name, NetNS: namespaces.Path(ws)})
			require.NoError(t, err)
			assert.Equal(t, netip.AddrFrom4([4]byte{10, 20, 1, byte(3 + i)}), a.IPv4, "never-used addresses first, in order")
		}
		_, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "full", NetNS: namespaces.Path(ws)})
		requireAPIError(t, err, http.StatusConflict, "ipv4")

		require.NoError(t, n.d.Detach(ctx, "shop", "c4"))
		require.NoError(t, n.d.Detach(ctx, "shop", "web"))
		assert.NotContains(t, linkNames(t, ws1), "znet0", "the workload's end is gone")
		assert.NotContains(t, linkNames(t, netNS), hostIfName("web"), "the bridge end is gone")
		assert.NotContains(t, view(t, netNS).chains, "bridge znet port-"+hostIfName("web"), "the firewall forgot the port")
		_, err = os.Stat(filepath.Join("/etc/netns", ws1))
		assert.ErrorIs(t, err, os.ErrNotExist, "resolv.conf removed")
		requireAPIError(t, n.d.Detach(ctx, "shop", "web"), http.StatusNotFound, "workload")

		a, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "n1", NetNS: namespaces.Path(ws)})
		require.NoError(t, err)
		assert.Equal(t, mustAddr("10.20.1.5"), a.IPv4, "c4's address, released first")
		a, err = n.d.Attach(ctx, "shop", api.AttachRequest{Name: "n2", NetNS: path1})
		require.NoError(t, err)
		assert.Equal(t, mustAddr("10.20.1.2"), a.IPv4, "web's address, released second")
		assert.Equal(t, "znet0", a.Interface, "znet0 is free again in the namespace")
	})

	step(t, "a workload whose namespace is gone shows so and can be detached", func(t *testing.T) {
		ws := n.newWorkloadNS(t)
		path := namespaces.Path(ws)
		a, err := n.d.Attach(ctx, "blog", api.AttachRequest{Name: "lost", NetNS: path})
		require.NoError(t, err)
		require.FileExists(t, resolvConf(ws))
		id, err := namespaces.Identify(path)
		require.NoError(t, err)
		require.NoError(t, namespaces.Delete(ws))
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		require.NoError(t, namespaces.WaitGone(wctx, id))

		wls, err := n.d.Workloads(ctx, "blog")
		require.NoError(t, err)
		require.Len(t, wls, 1)
		assert.Equal(t, api.StateNetNSGone, wls[0].State)
		st, err := n.d.Status(ctx, "blog")
		require.NoError(t, err)
		assert.Contains(t, st[0].Problems, "workload lost: namespace "+path+" is gone; detach it to free "+a.IPv4.String())

		require.NoError(t, n.d.Detach(ctx, "blog", "lost"))
		wls, err = n.d.Workloads(ctx, "blog")
		require.NoError(t, err)
		assert.Empty(t, wls)
		assert.Empty(t, n.allocated(t, "blog"), "the address is free")
		assert.NotContains(t, linkNames(t, n.nsName("blog")), hostIfName("lost"))
		_, err = os.Stat(filepath.Join("/etc/netns", ws))
		assert.ErrorIs(t, err, os.ErrNotExist, "resolv.conf removed")
		st, err = n.d.Status(ctx, "blog")
		require.NoError(t, err)
		assert.Empty(t, st[0].Problems)
	})

	step(t, "concurrent attaches get distinct addresses and interfaces", func(t *testing.T) {
		ws := n.newWorkloadNS(t)
		names := []string{"p1", "p2", "p3", "p4"}
		got := make([]api.Attachment, len(names))
		errs := make([]error, len(names))
		var wg sync.WaitGroup
		for i, name := range names {
			wg.Go(func() {
				got[i], errs[i] = n.d.Attach(ctx, "blog", api.AttachRequest{Name: name, NetNS: namespaces.Path(ws)})
			})
		}
		// Readers run beside the writers.
		wg.Go(func() {
			for range 10 {
				_, err := n.d.Status(ctx, "blog")
				assert.NoError(t, err)
				_, err = n.d.Workloads(ctx, "blog")
				assert.NoError(t, err)
			}
		})
		wg.Wait()
		addrs, ifs := map[netip.Addr]bool{}, map[string]bool{}
		for i := range names {
			require.NoError(t, errs[i])
			addrs[got[i].IPv4], ifs[got[i].Interface] = true, true
		}
		assert.Len(t, addrs, 4)
		assert.Equal(t, map[string]bool{"znet0": true, "znet1": true, "znet2": true, "znet3": true}, ifs)
		assert.Equal(t, []string{"lo", "znet0", "znet1", "znet2", "znet3"}, linkNames(t, ws))
		for _, name := range names {
			require.NoError(t, n.d.Detach(ctx, "blog", name))
		}
		assert.Equal(t, []string{"lo"}, linkNames(t, ws))
	})

	step(t, "delete with workloads needs force", func(t *testing.T) {
		requireAPIError(t, n.d.DeleteNetwork(ctx, "shop", false), http.StatusConflict, "name")
		require.True(t, namespaces.Exists(netNS))
		wls, err := n.d.Workloads(ctx, "shop")
		require.NoError(t, err)
		require.Len(t, wls, 5)

		require.NoError(t, n.d.DeleteNetwork(ctx, "shop", true))
		assert.False(t, namespaces.Exists(netNS))
		assert.Zero(t, n.real.PID(n.dev("shop")))
		for _, w := range wls {
			waitLinks(t, w.NetNS, "lo")
			_, err := os.Stat(resolvConf(filepath.Base(w.NetNS)))
			assert.ErrorIs(t, err, os.ErrNotExist, "resolv.conf of %s", w.Name)
		}
		_, err = n.d.Workloads(ctx, "shop")
		requireAPIError(t, err, http.StatusNotFound, "name")
		list, err := n.d.Networks(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)
		assert.Equal(t, "blog", list[0].Name, "the other network is untouched")
	})
}
