package daemon

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/netconf"
)

func TestTransferAddr6(t *testing.T) {
	a, _ := transferAddr(51820)
	b, _ := transferAddr(51821)
	assert.Equal(t, "fd5a:6e65:6567::ca6c", transferAddr6(a).String())
	assert.NotEqual(t, transferAddr6(a), transferAddr6(b), "one per network")
	assert.True(t, transfer6Prefix.Contains(transferAddr6(b)))
}

// TestEgress6Uplinks: IPv6 egress needs a global address and an IPv6
// default route; a unique local address or a missing route gives none.
func TestEgress6Uplinks(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	name := "zt-e6-" + testutil.RandomHex(t, 4)
	require.NoError(t, namespaces.Create(name))
	t.Cleanup(func() { assert.NoError(t, namespaces.Delete(name)) })
	ip := func(args ...string) {
		out, err := exec.Command("ip", append([]string{"-n", name}, args...)...).CombinedOutput()
		require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
	}
	ip("link", "add", "up0", "type", "veth", "peer", "name", "up1")
	ip("link", "set", "up1", "up")
	ip("link", "set", "up0", "up")
	ns, err := namespaces.Open("/run/netns/" + name)
	require.NoError(t, err)
	defer func() { _ = ns.Close() }()
	u, err := netconf.Kernel{UnderlayNS: ns}.Underlay()
	require.NoError(t, err)
	defer func() { _ = u.Close() }()
	steps := []struct {
		name string
		args []string
		want []string
	}{
		{"nothing", nil, nil},
		{"unique local address and a default route", []string{"addr", "add", "fd00:1::1/64", "dev", "up0", "nodad"}, nil},
		{"", []string{"-6", "route", "add", "default", "via", "fd00:1::fe"}, nil},
		{"global address too", []string{"addr", "add", "2001:db8:1::1/64", "dev", "up0", "nodad"}, []string{"up0"}},
		{"no default route", []string{"-6", "route", "del", "default"}, nil},
	}
	for _, s := range steps {
		if s.args != nil {
			ip(s.args...)
		}
		if s.name == "" {
			continue
		}
		got, err := egress6Uplinks(u)
		require.NoError(t, err)
		assert.Equal(t, s.want, got, s.name)
	}
}
