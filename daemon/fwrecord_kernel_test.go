package daemon

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/firewall"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
)

// TestRecoverKeepsKernelFirewall checks, in real namespaces, that a
// restarted daemon leaves an untouched firewall alone (the nftables
// generation does not move), and rebuilds it after an nft change by hand.
func TestRecoverKeepsKernelFirewall(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.d.markDir = filepath.Join(n.dir, "netns")
	applyWithWorkload(t, n, "shop", "10.20.1.0/24")
	ns := n.nsName("shop")
	gen := func() uint32 {
		h, err := namespaces.Open(ns)
		require.NoError(t, err)
		defer func() { _ = h.Close() }()
		g, err := firewall.Generation(h)
		require.NoError(t, err)
		return g
	}
	restart := func() {
		n.restart(t)
		n.d.markDir = filepath.Join(n.dir, "netns")
		require.NoError(t, n.d.Recover(ctx))
	}
	before := gen()
	restart()
	assert.Equal(t, before, gen(), "an untouched firewall is adopted, not rebuilt")

	for _, args := range [][]string{{"add", "table", "inet", "byhand"}, {"delete", "table", "inet", "byhand"}} {
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	changed := gen()
	require.Greater(t, changed, before)
	restart()
	assert.Greater(t, gen(), changed, "a ruleset changed by hand is rebuilt at restart")
}
