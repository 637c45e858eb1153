package daemon

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/store"
)

func TestTransferAddr(t *testing.T) {
	tests := []struct {
		port int
		want string // "" for refused
	}{
		{51820, "169.254.202.108"},
		{51821, "169.254.202.109"},
		{256, "169.254.1.0"},
		{65279, "169.254.254.255"},
		{255, ""},   // 169.254.0.0/24 is reserved
		{65280, ""}, // 169.254.255.0/24 is reserved
		{43518, ""}, // 169.254.169.254, cloud metadata
	}
	seen := map[netip.Addr]int{}
	for _, tt := range tests {
		got, err := transferAddr(tt.port)
		if tt.want == "" {
			require.ErrorIs(t, err, api.ErrInvalid, "port %d", tt.port)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tt.want, got.String(), "port %d", tt.port)
		assert.NotContains(t, seen, got, "ports %d and %d share an address", seen[got], tt.port)
		seen[got] = tt.port
	}
}

func TestEgressLinkName(t *testing.T) {
	a := egressLinkName("node1", "shop")
	assert.Len(t, a, 12)
	assert.Equal(t, a, egressLinkName("node1", "shop"), "stable")
	assert.NotEqual(t, a, egressLinkName("node2", "shop"), "per node")
	assert.NotEqual(t, a, egressLinkName("node1", "shop2"), "per network")
}

func TestTapAttachmentHasTheWayOut(t *testing.T) {
	u := newUnit(t, "node1")
	s := oneNodeSpec("shop", "node1", 1)
	s.SetDefaults()
	subnets, err := u.d.subnetsOf(s)
	require.NoError(t, err)
	w := &store.Workload{Name: "vm", Kind: "tap", IPv4: mustAddr("10.20.1.5")}
	def := api.Route{To: netip.MustParsePrefix("0.0.0.0/0"), Via: mustAddr("10.20.1.1")}
	assert.NotContains(t, u.d.attachment("shop", s, subnets, w).Routes, def, "no egress, no way out")
	s.Egress = true
	assert.Contains(t, u.d.attachment("shop", s, subnets, w).Routes, def)
}
