package deploytest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
	"github.com/znet/znet/spec"
)

// doc is a spec of two members whose first is the fake node1 with key
// and endpoint.
func doc(gen int, key, endpoint string) []byte {
	return fmt.Appendf(nil, `{"name": "shop", "generation": %d, "ip_range": "10.20.0.0/16", "nodes": [
		{"id": "node1", "subnet": "10.20.1.0/24", "public_key": %q, "endpoint": %q},
		{"id": "node2", "subnet": "10.20.2.0/24", "public_key": %q}]}`, gen, key, endpoint, apitest.Key(2))
}

// TestApplyAnswersAsTheDaemon checks that the fake node refuses what the
// daemon refuses, with the daemon's fields (package admit).
func TestApplyAnswersAsTheDaemon(t *testing.T) {
	ctx := t.Context()
	f := NewNode("node1", 1)

	_, err := f.ApplyRaw(ctx, doc(1, apitest.Key(1), ""))
	require.ErrorIs(t, err, api.ErrConflict)
	assert.Contains(t, err.Error(), "nodes[0].public_key: node node1 has no reservation for shop")

	_, err = f.ApplyRaw(ctx, doc(1, "", "198.18.0.1:1"))
	require.ErrorIs(t, err, api.ErrConflict)
	assert.Contains(t, err.Error(), "nodes[0].endpoint: port 1 is not the port node node1 reserved for shop (40100)")
	assert.False(t, f.Has("shop"), "a refused first apply leaves no reservation")

	res, err := f.Reserve(ctx, "shop")
	require.NoError(t, err)
	_, err = f.ApplyRaw(ctx, doc(1, apitest.Key(9), ""))
	require.ErrorIs(t, err, api.ErrConflict)
	assert.Contains(t, err.Error(), "nodes[0].public_key: is not the key node node1 reserved for shop")

	applied, err := f.ApplyRaw(ctx, doc(2, "", fmt.Sprintf("198.18.0.1:%d", res.ListenPort)))
	require.NoError(t, err)
	assert.True(t, applied.Changed)
	assert.Equal(t, apitest.Key(1), f.Spec("shop").Nodes[0].PublicKey, "the node fills in its own key")

	again, err := f.ApplyRaw(ctx, doc(2, apitest.Key(1), fmt.Sprintf("198.18.0.1:%d", res.ListenPort)))
	require.NoError(t, err)
	assert.False(t, again.Changed)

	_, err = f.ApplyRaw(ctx, doc(1, "", ""))
	require.ErrorIs(t, err, api.ErrConflict)
	assert.Contains(t, err.Error(), "generation: 1 is older than the applied generation 2")

	_, err = f.Apply(ctx, &spec.Spec{Name: "shop", Generation: 3, IPRange: f.Spec("shop").IPRange,
		Nodes: []spec.Node{{ID: "node2", Subnet: f.Spec("shop").Nodes[1].Subnet, PublicKey: apitest.Key(2)}}})
	require.ErrorIs(t, err, api.ErrInvalid)
	assert.Contains(t, err.Error(), "nodes: this node (node1) is not a member")
}
