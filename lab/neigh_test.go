package lab

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/namespaces"
)

// TestPinNeighbours makes the underlay of a three-node lab (no znetd) and
// checks that every node knows every other node's address as a permanent
// neighbour with the right MAC, so that a large lab does not overflow the
// machine-wide ARP table, and that the nodes reach each other.
func TestPinNeighbours(t *testing.T) {
	skipUnlessRoot(t)
	b := make([]byte, 3)
	_, err := rand.Read(b)
	require.NoError(t, err)
	name := "zt-nb" + hex.EncodeToString(b) + "-"
	internet := name + "inet"
	var nodes []Node
	t.Cleanup(func() {
		for _, n := range nodes {
			_ = namespaces.Delete(n.NetNS)
		}
		_ = namespaces.Delete(internet)
	})
	require.NoError(t, ensureInternet(internet, 0))
	for i := 1; i <= 3; i++ {
		n := Node{ID: fmt.Sprintf("n%d", i), NetNS: fmt.Sprintf("%sn%d", name, i), Underlay: netip.AddrFrom4([4]byte{198, 18, 0, byte(i)})}
		nodes = append(nodes, n)
		require.NoError(t, ensureNodeNet(internet, n, i, 0))
	}
	require.NoError(t, pinNeighbours(nodes))

	for _, n := range nodes {
		out, err := exec.Command("ip", "-n", n.NetNS, "neigh", "show", "dev", underlayLink).CombinedOutput()
		require.NoError(t, err, string(out))
		for _, m := range nodes {
			if m.ID == n.ID {
				continue
			}
			mac, err := exec.Command("ip", "-n", m.NetNS, "-br", "link", "show", underlayLink).CombinedOutput()
			require.NoError(t, err, string(mac))
			want := fmt.Sprintf("%s lladdr %s PERMANENT", m.Underlay, strings.Fields(string(mac))[2])
			assert.Contains(t, string(out), want, "node %s's neighbour %s", n.ID, m.ID)
		}
		out, err = exec.Command("ip", "netns", "exec", n.NetNS, "ping", "-c1", "-W2", nodes[0].Underlay.String()).CombinedOutput()
		require.NoError(t, err, string(out))
	}
}
