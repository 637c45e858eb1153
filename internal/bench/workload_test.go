package bench

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/namespaces"
)

// TestRoutedWorkloadForwards joins a workload namespace to a "node"
// namespace with routedWorkload and checks that the workload reaches a
// third namespace behind the node: the node forwards, the workload routes
// by default through it, and both ends of the veth have the MTU asked for.
func TestRoutedWorkloadForwards(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make namespaces")
	}
	prefix := uniqueName() + "-"
	node, far := prefix+"node", prefix+"far"
	w := workload{ns: prefix + "wl", link: "bwtest", subnet: netip.MustParsePrefix("10.99.16.0/24")}
	for _, ns := range []string{node, far, w.ns} {
		require.NoError(t, namespaces.Create(ns))
		t.Cleanup(func() { assert.NoError(t, namespaces.Delete(ns)) })
	}
	// far is behind node, on an underlay address, with a route back to
	// the workload's subnet.
	for _, s := range [][]string{
		{node, "link", "add", "tofar", "type", "veth", "peer", "name", "eth0", "netns", far},
		{node, "addr", "add", "198.18.201.1/24", "dev", "tofar"},
		{far, "addr", "add", "198.18.201.2/24", "dev", "eth0"},
		{node, "link", "set", "tofar", "up"},
		{far, "link", "set", "eth0", "up"},
		{far, "route", "add", w.subnet.String(), "via", "198.18.201.1"},
	} {
		require.NoError(t, ipIn(s[0], s[1:]...))
	}

	require.NoError(t, routedWorkload(node, w, 1400))

	ctx := context.Background()
	_, err := inNS(ctx, w.ns, "ping", "-c", "1", "-W", "2", "198.18.201.2")
	assert.NoError(t, err, "the workload does not reach past its node")
	for _, end := range []struct{ ns, link string }{{w.ns, "eth0"}, {node, w.link}} {
		out, err := inNS(ctx, end.ns, "ip", "link", "show", end.link)
		require.NoError(t, err)
		assert.True(t, strings.Contains(out, " mtu 1400 "), "%s in %s: %s", end.link, end.ns, out)
	}
	addr, err := inNS(ctx, w.ns, "ip", "-4", "-o", "addr", "show", "eth0")
	require.NoError(t, err)
	assert.Contains(t, addr, "10.99.16.2/24")
}
