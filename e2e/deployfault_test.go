package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/lab"
)

// cutTable is the nftables table cutLink adds to a node's underlay.
const cutTable = "zt_cut"

// cutLink drops every UDP packet between node and peer in node's underlay
// namespace (both ways), as an outage of the path between them would; the
// returned function heals it. The lab's namespaces go with the lab, so a
// test that fails half way leaves nothing behind either.
func cutLink(t *testing.T, node, peer lab.Node) func() {
	t.Helper()
	rules := fmt.Sprintf(`table inet %[1]s {
	chain in { type filter hook input priority -10; ip saddr %[2]s meta l4proto udp drop; }
	chain out { type filter hook output priority -10; ip daddr %[2]s meta l4proto udp drop; }
}
`, cutTable, peer.Underlay)
	out, err := inNSStdin(node.NetNS, rules, "nft", "-f", "-")
	require.NoError(t, err, out)
	return func() {
		out, err := inNS(node.NetNS, "nft", "delete", "table", "inet", cutTable)
		require.NoError(t, err, out)
	}
}

// deployRun runs `znet deploy` with a timeout and returns its output and
// error, for a test that expects it to fail.
func deployRun(l *lab.Lab, file, timeout string) (string, string, error) {
	return znetRun(l.Nodes[0], "", "deploy", "-f", file, "--state-dir", filepath.Join(l.Dir, "deploy"), "--timeout", timeout)
}

// TestDeployOverDeadLink covers issue 11 item 5: a redeploy while the link
// between two nodes is down must not report success on the strength of the
// handshake they made before the outage, and must name the pair.
func TestDeployOverDeadLink(t *testing.T) {
	l := newLab(t, 3)
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	file := deployment(t, "cut", "10.90.0.0/16", l.Nodes, n3.ID)
	deploy(t, l, file)

	heal := cutLink(t, n1, n2)
	out, errOut, err := deployRun(l, file, "15s")
	require.Error(t, err, "deploy over a dead link succeeded:\n%s", out)
	assert.Contains(t, errOut, fmt.Sprintf("node %s: waiting for the mesh: no new handshake or packet from %s since generation 2 was applied", n1.ID, n2.ID))
	assert.Contains(t, errOut, fmt.Sprintf("node %s: waiting for the mesh: no new handshake or packet from %s since generation 2 was applied", n2.ID, n1.ID))
	assert.NotContains(t, errOut, "node "+n3.ID+":", "the hidden node's links are up")
	assert.Contains(t, errOut, "2 of 3 nodes failed")

	heal()
	out = deploy(t, l, file)
	assert.Contains(t, out, "generation 3")
	assert.NotContains(t, out, "FAILED")
}

// inNSStdin runs a command inside the named namespace with stdin.
func inNSStdin(ns, stdin string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
