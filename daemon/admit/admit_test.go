package admit

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
	"github.com/znet/znet/spec"
)

// reserved is what node1 holds in these tests.
var reserved = Reservation{PublicKey: apitest.Key(1), ListenPort: 40001}

// shop returns a validated spec of generation gen whose node1 entry has
// key and endpoint.
func shop(t *testing.T, gen uint64, key, endpoint string) *spec.Spec {
	t.Helper()
	s := &spec.Spec{
		Name: "shop", Generation: gen, IPRange: netip.MustParsePrefix("10.20.0.0/16"),
		Nodes: []spec.Node{
			{ID: "node2", Subnet: netip.MustParsePrefix("10.20.2.0/24"), PublicKey: apitest.Key(2), Endpoint: "198.18.0.2:40007"},
			{ID: "node1", Subnet: netip.MustParsePrefix("10.20.1.0/24"), PublicKey: key, Endpoint: endpoint},
		},
	}
	s.SetDefaults()
	require.NoError(t, s.Validate("node1"))
	return s
}

func TestCheck(t *testing.T) {
	applied := shop(t, 3, apitest.Key(1), "198.18.0.1:40001")
	for _, tc := range []struct {
		name        string
		s, old      *spec.Spec
		changed     bool
		field, want string
	}{
		{name: "first apply", s: shop(t, 1, "", ""), changed: true},
		{name: "first apply with own key and port", s: shop(t, 1, apitest.Key(1), "198.18.0.1:40001"), changed: true},
		{name: "another key", s: shop(t, 1, apitest.Key(9), ""), field: "nodes[1].public_key", want: "is not the key node node1 reserved for shop"},
		{name: "another port", s: shop(t, 1, "", "198.18.0.1:40002"), field: "nodes[1].endpoint", want: "port 40002 is not the port node node1 reserved for shop (40001)"},
		{name: "newer generation", s: shop(t, 4, "", "198.18.0.1:40001"), old: applied, changed: true},
		{name: "same generation, same content", s: shop(t, 3, apitest.Key(1), "198.18.0.1:40001"), old: applied},
		{name: "same generation, key left out", s: shop(t, 3, "", "198.18.0.1:40001"), old: applied},
		{name: "same generation, other content", s: shop(t, 3, "", ""), old: applied, field: "generation", want: "already applied with different content"},
		{name: "older generation", s: shop(t, 2, "", "198.18.0.1:40001"), old: applied, field: "generation", want: "2 is older than the applied generation 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed, err := Check(tc.s, tc.old, "node1", reserved)
			if tc.want == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.changed, changed)
				return
			}
			var e *api.Error
			require.ErrorAs(t, err, &e)
			require.ErrorIs(t, err, api.ErrConflict)
			assert.Equal(t, tc.field, e.Field)
			assert.Contains(t, e.Message, tc.want)
			assert.False(t, changed)
		})
	}
}

func TestMemberAndUnreserved(t *testing.T) {
	s := shop(t, 1, "", "")
	require.NoError(t, Member(s, "node1"))
	err := Member(s, "node3")
	require.ErrorIs(t, err, api.ErrInvalid)
	assert.Contains(t, err.Error(), "nodes: this node (node3) is not a member")

	require.NoError(t, Unreserved(s, "node1"), "a node may reserve when its entry leaves the key out")
	err = Unreserved(s, "node2")
	require.ErrorIs(t, err, api.ErrConflict)
	assert.Contains(t, err.Error(), "nodes[0].public_key: node node2 has no reservation for shop")
}

func TestFillSelf(t *testing.T) {
	s := shop(t, 1, "", "")
	FillSelf(s, "node1", apitest.Key(1))
	assert.Equal(t, apitest.Key(1), s.Nodes[1].PublicKey)
	FillSelf(s, "node1", apitest.Key(9))
	assert.Equal(t, apitest.Key(1), s.Nodes[1].PublicKey, "a key given is kept")
	assert.Equal(t, 1, SelfIndex(s, "node1"))
	assert.Equal(t, -1, SelfIndex(s, "node3"))
}
