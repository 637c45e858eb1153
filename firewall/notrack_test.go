package firewall

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
)

// tracked reports whether n's connection tracking table holds an entry
// from src to dst.
func (n *testNS) tracked(t *testing.T, src, dst string) bool {
	t.Helper()
	var table []byte
	require.NoError(t, namespaces.Do(n.ns, func() error {
		var err error
		// thread-self: /proc/net is the main thread's namespace.
		table, err = os.ReadFile("/proc/thread-self/net/nf_conntrack")
		return err
	}))
	return strings.Contains(string(table), "src="+src+" dst="+dst+" ")
}

// TestForwardedTrafficIsNotTracked checks that what is only forwarded
// between the bridge and the overlay leaves no conntrack entry, while
// packets to the gateway and from or to an access peer are still tracked
// (the input chain and the access-peer rules decide by state).
func TestForwardedTrafficIsNotTracked(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	if _, err := os.Stat("/proc/net/nf_conntrack"); err != nil {
		t.Skip("no /proc/net/nf_conntrack to read the conntrack table from")
	}
	l := newLab(t)
	mustApply(t, l.net, l.rules())
	require.True(t, l.a.ping(t, a4, remote4), "a reaches the overlay")
	require.True(t, l.remote.ping(t, remote4, b4), "the overlay reaches b")
	require.True(t, l.a.ping(t, a4, gw4), "a reaches the gateway")
	assert.False(t, l.net.tracked(t, a4.String(), remote4.String()), "bridge to overlay")
	assert.False(t, l.net.tracked(t, remote4.String(), b4.String()), "overlay to bridge")
	assert.True(t, l.net.tracked(t, a4.String(), gw4.String()), "to the gateway")

	r := l.rules()
	r.AccessPeers = append(r.AccessPeers, remote4)
	mustApply(t, l.net, r)
	require.True(t, l.remote.ping(t, remote4, a4), "the access peer reaches a")
	assert.True(t, l.net.tracked(t, remote4.String(), a4.String()), "from an access peer")
}
