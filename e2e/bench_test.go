package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/spec"
)

// reportPercentiles adds p50 and p99 of d (milliseconds) to b's output.
func reportPercentiles(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	b.ReportMetric(ms(d[len(d)/2]), "p50-ms")
	b.ReportMetric(ms(d[len(d)*99/100]), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkNetworkApply measures `network apply` of a new one-node
// network on a real znetd (namespace, data plane, bridge, firewall).
func BenchmarkNetworkApply(b *testing.B) {
	l := newLab(b, 1)
	node := l.Nodes[0]
	c := node.Client()
	ctx := context.Background()
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		s := &spec.Spec{Name: fmt.Sprintf("b%d", i), Generation: 1, IPRange: mustPrefix("10.20.0.0/16"),
			Nodes: []spec.Node{{ID: node.ID, Subnet: mustPrefix("10.20.1.0/24")}}}
		start := time.Now()
		_, err := c.Apply(ctx, s)
		took = append(took, time.Since(start))
		require.NoError(b, err)
	}
	reportPercentiles(b, took)
}

// BenchmarkWorkloadAttach measures `workload attach` into a network.
func BenchmarkWorkloadAttach(b *testing.B) {
	l := newLab(b, 1)
	node := l.Nodes[0]
	c := node.Client()
	ctx := context.Background()
	s := &spec.Spec{Name: "bench", Generation: 1, IPRange: mustPrefix("10.20.0.0/16"),
		Nodes: []spec.Node{{ID: node.ID, Subnet: mustPrefix("10.20.0.0/20")}}}
	// All workloads go to one network: the firewall's batch grows with
	// them (it once overflowed netlink at 59 workloads).
	_, err := c.Apply(ctx, s)
	require.NoError(b, err)
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		ns := fmt.Sprintf("ztb%s-%d", randName(), i)
		require.NoError(b, exec.Command("ip", "netns", "add", ns).Run())
		b.Cleanup(func() { assert.NoError(b, exec.Command("ip", "netns", "del", ns).Run()) })
		start := time.Now()
		_, err := c.Attach(ctx, "bench", api.AttachRequest{Name: fmt.Sprintf("w%d", i), NetNS: "/run/netns/" + ns})
		took = append(took, time.Since(start))
		require.NoError(b, err)
	}
	reportPercentiles(b, took)
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
