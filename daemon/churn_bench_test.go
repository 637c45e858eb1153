package daemon

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/vishvananda/netlink"
	"github.com/znet/znet/firewall"
	"github.com/znet/znet/peers"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/api"
	"github.com/znet/znet/dataplane"
	"github.com/znet/znet/dnsresolver/dnsclient"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/netconf"
	"github.com/znet/znet/overlay"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
)

// churnMembers is how many key-only members the churn benchmark's network
// has besides this node and one public peer, as in bench/peers.go.
const churnMembers = 1000

// churnSettle is how long BenchmarkChurn waits after the network's first
// apply (internal/bench's churnSettle).
const churnSettle = 20 * time.Second

// churnMember is key-only member i: a random key, no endpoint, subnet
// 16+i of 10.64.0.0/12 (bench/peers.go's fakeMember).
func churnMember(t testing.TB, i int) spec.Node {
	k, err := wgtypes.GenerateKey()
	require.NoError(t, err)
	j := 16 + i
	return spec.Node{ID: fmt.Sprintf("fake%d", i), PublicKey: base64.StdEncoding.EncodeToString(k[:]),
		Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(64 + j/256), byte(j % 256), 0}), 24)}
}

// benchNode is a daemon over the real userspace backend (data planes are
// re-executions of the test binary), its UDP sockets in an underlay
// namespace of its own, served through the API on a Unix socket.
type benchNode struct {
	d      *Daemon
	client *api.Client
	cfg    Config          // d's, for a second daemon over the same state
	beOpts overlay.Options // its backend's
}

// newBenchNode starts a benchNode; b.Cleanup deletes its networks and
// namespaces.
func newBenchNode(b *testing.B) *benchNode {
	b.Helper()
	id := newNodeID(b)
	dir := b.TempDir()
	ul := "zt-dmb-" + testutil.RandomHex(b, 4) + "-ul"
	require.NoError(b, namespaces.Create(ul))
	b.Cleanup(func() { _ = namespaces.Delete(ul) })
	h, err := namespaces.Open(ul)
	require.NoError(b, err)
	b.Cleanup(func() { _ = h.Close() })
	st, err := store.Open(dir)
	require.NoError(b, err)
	b.Cleanup(func() { assert.NoError(b, st.Close()) })
	runDir := filepath.Join(dir, "run")
	beOpts := overlay.Options{
		Underlay: h, RunDir: runDir, Exe: os.Args[0], Env: []string{dataplaneEnv + "=1"},
	}
	be, err := overlay.New("userspace", beOpts)
	require.NoError(b, err)
	b.Cleanup(func() { assert.NoError(b, be.(interface{ Close() error }).Close()) })
	// The data planes' resolvers are pushed to as znetd does: an apply
	// without that push would leave out one of its costs. Ports above the
	// ephemeral ones: the data planes' resolvers take some of those in the
	// same underlay.
	cfg := Config{NodeID: id, Store: st, Backend: be, PortMin: 61000, PortMax: 62099,
		PortFree: func(int) bool { return true }, Underlay: h,
		MarkDir: filepath.Join(dir, "netns"), // as znetd: its firewall records live there
		DNS: &dnsclient.Sockets{Path: func(network string) string {
			return dataplane.ResolverSocket(runDir, overlay.IfName(id, network))
		}}}
	d, err := New(cfg)
	require.NoError(b, err)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		list, err := d.Networks(ctx)
		if err != nil {
			b.Error(err)
			return
		}
		for _, s := range list {
			if err := d.DeleteNetwork(ctx, s.Name, true); err != nil {
				b.Errorf("deleting %s: %v", s.Name, err)
			}
		}
	})
	sock := filepath.Join(dir, "api.sock")
	l, err := api.ListenUnix(sock)
	require.NoError(b, err)
	srv := api.NewServer(d, api.ServerOptions{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	b.Cleanup(func() {
		assert.NoError(b, srv.Shutdown(context.Background()))
		assert.NoError(b, <-served)
	})
	return &benchNode{d: d, client: api.NewClient(sock), cfg: cfg, beOpts: beOpts}
}

// newChurnNetwork applies, on a new bench node, network "churn" with this
// node, one public peer and churnMembers key-only members; it returns the
// node and the applied spec.
func newChurnNetwork(b *testing.B) (*benchNode, *spec.Spec) {
	n := newBenchNode(b)
	ctx := context.Background()
	res, err := n.client.Reserve(ctx, "churn")
	require.NoError(b, err)
	s := &spec.Spec{
		Name: "churn", Generation: 1, IPRange: netip.MustParsePrefix("10.64.0.0/12"),
		Nodes: []spec.Node{
			{ID: n.d.nodeID, Subnet: netip.MustParsePrefix("10.64.1.0/24"), PublicKey: res.PublicKey,
				Endpoint: fmt.Sprintf("198.18.0.1:%d", res.ListenPort)},
			{ID: "real", Subnet: netip.MustParsePrefix("10.64.2.0/24"), PublicKey: publicKey(b), Endpoint: "198.18.0.2:40000"},
		},
	}
	for i := range churnMembers {
		s.Nodes = append(s.Nodes, churnMember(b, i))
	}
	_, err = n.client.Apply(ctx, s)
	require.NoError(b, err)
	return n, s
}

// BenchmarkChurn times adding one member to, and removing it from, a
// network of this node, one public peer and churnMembers key-only members:
// each op is one apply of the whole spec with the generation bumped.
// "api" goes through the Unix-socket API as `znet network apply` does,
// "direct" calls Daemon.Apply.
//
//	sudo go test ./daemon/ -run '^$' -bench Churn -benchtime 20x
func BenchmarkChurn(b *testing.B) {
	testutil.SkipUnlessRoot(b)
	n, base := newChurnNetwork(b)
	ctx := context.Background()
	extra := churnMember(b, churnMembers)
	// Past the data plane's start (its collector held 10 s, then its idle
	// bound) and the resolver's first-sync hold, as the bench's churn
	// part: a network's steady state.
	time.Sleep(churnSettle)

	apply := map[string]func(*spec.Spec) error{
		"api":    func(s *spec.Spec) error { _, err := n.client.Apply(ctx, s); return err },
		"direct": func(s *spec.Spec) error { _, err := n.d.Apply(ctx, s); return err },
	}
	for _, via := range []string{"api", "direct"} {
		b.Run(via, func(b *testing.B) {
			var add, rm []time.Duration
			for b.Loop() {
				plus := *base
				plus.Nodes = append(slices.Clone(base.Nodes), extra)
				plus.Generation = base.Generation + 1
				start := time.Now()
				require.NoError(b, apply[via](&plus))
				add = append(add, time.Since(start))
				base.Generation = plus.Generation + 1
				start = time.Now()
				require.NoError(b, apply[via](base))
				rm = append(rm, time.Since(start))
			}
			b.ReportMetric(median(add), "add-p50-ms")
			b.ReportMetric(median(rm), "remove-p50-ms")
		})
	}
}

func median(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}

// BenchmarkChurnPhases times, one by one, the steps an apply of the churn
// network runs, to tell which dominates.
func BenchmarkChurnPhases(b *testing.B) {
	testutil.SkipUnlessRoot(b)
	n, s := newChurnNetwork(b)
	ctx := context.Background()
	name := s.Name
	nw, wls, err := n.d.loadNetwork(name)
	require.NoError(b, err)
	doc, err := json.Marshal(s)
	require.NoError(b, err)
	dev := n.d.device(name, nw.Spec.MTU)
	desired, err := peers.Desired(ctx, nw.Spec, n.d.nodeID, nil)
	require.NoError(b, err)
	nsh, err := namespaces.Open(n.d.nsName(name))
	require.NoError(b, err)
	defer func() { _ = nsh.Close() }()
	h, err := netlink.NewHandleAt(nsh)
	require.NoError(b, err)
	defer h.Close()
	wg, err := h.LinkByName(dev.IfName)
	require.NoError(b, err)
	k, err := netconf.Kernel{}.Open(n.d.nsName(name), false)
	require.NoError(b, err)
	defer func() { _ = k.Close() }()
	wgState := netconf.LinkState{Index: wg.Attrs().Index, WasUp: true}

	phases := []struct {
		name string
		fn   func() error
	}{
		{"marshal", func() error { _, err := json.Marshal(s); return err }},
		{"decode", func() error { _, err := spec.Decode(doc, n.d.nodeID); return err }},
		{"validate", func() error { return nw.Spec.Validate(n.d.nodeID) }},
		{"clone", func() error { nw.Spec.Clone(); return nil }},
		{"load", func() error { _, _, err := n.d.loadNetwork(name); return err }},
		{"store", func() error { return n.d.store.Update(func(tx *store.Tx) error { return tx.PutNetwork(nw) }) }},
		{"desired", func() error { _, err := peers.Desired(ctx, nw.Spec, n.d.nodeID, nil); return err }},
		{"ensure", func() error { _, err := n.d.backend.Ensure(ctx, dev); return err }},
		{"show", func() error { _, err := n.d.backend.Show(ctx, dev); return err }},
		{"configure-noop", func() error { return n.d.configureDevice(ctx, dev, nw, desired, nil, nil) }},
		{"configure-remembered", func() error {
			return n.d.configureDeviceOf(ctx, k, n.d.backend.PID(dev), dev, nw, desired, nil)
		}},
		{"routes", func() error { return k.Routes(dev.IfName, nil, peers.Routes(desired)) }},
		{"routes-remembered", func() error { return n.d.syncRoutesOf(k, name, dev.IfName, wgState, peers.Routes(desired)) }},
		{"firewall", func() error { return firewall.Apply(nsh, n.d.rules(dev, wls, nil)) }},
		{"firewall-remembered", func() error { return n.d.applyFirewallOf(k, name, n.d.rules(dev, wls, nil)) }},
		{"netns-cookie", func() error { _, err := namespaces.Cookie(nsh); return err }},
		{"nft-generation", func() error { _, err := firewall.Generation(nsh); return err }},
		{"dns-config", func() error {
			cfg, err := n.d.dnsConfig(nw.Spec, wls)
			if err == nil {
				_, err = json.Marshal(cfg)
			}
			return err
		}},
		{"dns", func() error { n.d.pushDNS(ctx, nw, nw.Spec, wls); return nil }},
		{"realize", func() error { return n.d.realize(ctx, nw, nw.Spec, wls, nil) }},
	}
	for _, p := range phases {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				require.NoError(b, p.fn())
			}
		})
	}
}
