package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/spec"
)

// scaleNetworks is how many one-node networks BenchmarkManyNetworks puts
// on its node (the scale part of znet-bench goes to 1,000).
const scaleNetworks = 50

// BenchmarkManyNetworks times, on a node with scaleNetworks one-node
// networks, what grows with their count: status of all, the network list
// and the re-apply of one network (a new generation).
//
//	sudo go test ./daemon/ -run '^$' -bench ManyNetworks -cpuprofile cpu.out
func BenchmarkManyNetworks(b *testing.B) {
	testutil.SkipUnlessRoot(b)
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
	b.Run("list", func(b *testing.B) {
		for b.Loop() {
			_, err := n.client.Networks(ctx)
			require.NoError(b, err)
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
