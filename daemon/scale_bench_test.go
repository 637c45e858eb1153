package daemon

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/overlay"
	"github.com/znet/znet/spec"
)

// scaleNetworks is how many one-node networks BenchmarkManyNetworks puts
// on its node (the scale part of znet-bench goes to 1,000): profile two
// counts to see what grows, e.g. -scale-networks 50 and 300.
var scaleNetworksFlag = flag.Int("scale-networks", 50, "networks BenchmarkManyNetworks puts on its node (at most 1000)")

// BenchmarkManyNetworks times, on a node with scaleNetworks one-node
// networks, what grows with their count: status of all and of one, a
// workload's attach and detach, the network list,
// the re-apply of one network (a new generation), the apply of one more
// network (deleted again outside the timing) and its delete (applied
// outside the timing), and a recovery by a second
// daemon (znetd after a restart: every data plane adopted).
//
//	sudo go test ./daemon/ -run '^$' -bench ManyNetworks -cpuprofile cpu.out
func BenchmarkManyNetworks(b *testing.B) {
	testutil.SkipUnlessRoot(b)
	scaleNetworks := *scaleNetworksFlag
	n := newBenchNode(b)
	ctx := context.Background()
	specOf := func(i int) *spec.Spec {
		return &spec.Spec{Name: fmt.Sprintf("s%d", i), Generation: 1, IPRange: netip.MustParsePrefix("10.20.0.0/16"),
			Nodes: []spec.Node{{ID: n.d.nodeID, Subnet: netip.MustParsePrefix("10.20.1.0/24")}}}
	}
	for i := range scaleNetworks {
		_, err := n.client.Apply(ctx, specOf(i))
		require.NoError(b, err)
	}
	b.Run("status-all", func(b *testing.B) {
		for b.Loop() {
			sts, err := n.client.Status(ctx, "")
			require.NoError(b, err)
			require.Len(b, sts, scaleNetworks)
		}
	})
	b.Run("status-one", func(b *testing.B) {
		for b.Loop() {
			sts, err := n.client.Status(ctx, specOf(0).Name)
			require.NoError(b, err)
			require.Len(b, sts, 1)
		}
	})
	b.Run("attach-detach", func(b *testing.B) {
		wl := "zt-dmb-" + testutil.RandomHex(b, 4) + "-w"
		require.NoError(b, namespaces.Create(wl))
		b.Cleanup(func() { _ = namespaces.Delete(wl) })
		req := api.AttachRequest{Name: "web", NetNS: namespaces.Path(wl)}
		for b.Loop() {
			_, err := n.client.Attach(ctx, specOf(0).Name, req)
			require.NoError(b, err)
			require.NoError(b, n.client.Detach(ctx, specOf(0).Name, "web"))
		}
	})
	b.Run("list", func(b *testing.B) {
		for b.Loop() {
			_, err := n.client.Networks(ctx)
			require.NoError(b, err)
		}
	})
	b.Run("apply-new", func(b *testing.B) {
		for b.Loop() {
			_, err := n.client.Apply(ctx, specOf(scaleNetworks))
			require.NoError(b, err)
			b.StopTimer()
			require.NoError(b, n.client.DeleteNetwork(ctx, specOf(scaleNetworks).Name, false))
			b.StartTimer()
		}
	})
	b.Run("delete", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			_, err := n.client.Apply(ctx, specOf(scaleNetworks))
			require.NoError(b, err)
			b.StartTimer()
			require.NoError(b, n.client.DeleteNetwork(ctx, specOf(scaleNetworks).Name, false))
		}
	})
	b.Run("recover", func(b *testing.B) {
		for b.Loop() {
			d, stop := n.restarted(b)
			require.NoError(b, d.Recover(ctx))
			b.StopTimer()
			stop()
			b.StartTimer()
		}
	})
	last := specOf(scaleNetworks - 1)
	b.Run("reapply", func(b *testing.B) {
		for b.Loop() {
			last.Generation++
			_, err := n.client.Apply(ctx, last)
			require.NoError(b, err)
		}
	})
}

// restarted returns a second daemon over n's state and data planes, with a
// backend of its own, as znetd after a restart before it recovers; stop
// closes both.
func (n *benchNode) restarted(b *testing.B) (d *Daemon, stop func()) {
	b.Helper()
	be, err := overlay.New("userspace", n.beOpts)
	require.NoError(b, err)
	cfg := n.cfg
	cfg.Backend = be
	d, err = New(cfg)
	require.NoError(b, err)
	return d, func() {
		d.sup.close()
		assert.NoError(b, be.(interface{ Close() error }).Close())
	}
}
