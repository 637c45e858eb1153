package daemon

import (
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/ipam"
	"github.com/znet/znet/store"
	"github.com/znet/znet/zos"
)

// zosWorkload reads zos/testdata/NAME.json with version and port set.
func zosWorkload(t *testing.T, name string, version uint64, port uint16) *zos.Workload {
	t.Helper()
	b, err := os.ReadFile("../zos/testdata/" + name + ".json")
	require.NoError(t, err)
	w, err := zos.Decode(b)
	require.NoError(t, err)
	w.Version, w.Data.WireguardListenPort = version, port
	return w
}

// seedZos writes, straight into the state, twin's workload w as if it had
// been applied, so the checks against it run without root.
func seedZos(t *testing.T, u *unit, twin uint32, w *zos.Workload) {
	t.Helper()
	plan, err := zos.Translate(twin, w, u.d.NodeID())
	require.NoError(t, err)
	self, _ := plan.Spec.Node(u.d.NodeID())
	addrs, err := ipam.NewAllocator(self.Subnet)
	require.NoError(t, err)
	require.NoError(t, u.store.Update(func(tx *store.Tx) error {
		return tx.PutNetwork(&store.Network{
			Name: plan.Spec.Name, PrivateKey: plan.PrivateKey.String(), PublicKey: self.PublicKey,
			ListenPort: plan.ListenPort, Spec: plan.Spec, Addrs: addrs,
			Zos: &store.ZosOrigin{Twin: twin, Name: w.Name, Version: w.Version},
		})
	}))
}

// TestZosRefusedBeforeTheKernel covers the workloads refused by the node's
// configuration and state: the answer names the field, nothing reaches
// the backend and the state is unchanged.
func TestZosRefusedBeforeTheKernel(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		setup  func(t *testing.T, u *unit)
		apply  *zos.Workload
		status int
		field  string
		reason string
	}{
		{
			name:  "imported keys not allowed",
			setup: func(t *testing.T, u *unit) { u.d.importKeys = false },
			apply: zosWorkload(t, "access", 0, 5827), status: http.StatusConflict,
			field: "data.wireguard_private_key", reason: "--allow-imported-keys",
		},
		{
			name:  "an older version",
			setup: func(t *testing.T, u *unit) { seedZos(t, u, 42, zosWorkload(t, "access", 3, 5827)) },
			apply: zosWorkload(t, "access", 2, 5827), status: http.StatusConflict, field: "version", reason: "older",
		},
		{
			name:  "the same version with another port",
			setup: func(t *testing.T, u *unit) { seedZos(t, u, 42, zosWorkload(t, "access", 3, 5827)) },
			apply: zosWorkload(t, "access", 3, 5828), status: http.StatusConflict, field: "version", reason: "different content",
		},
		{
			name: "a network of that name applied from a spec",
			setup: func(t *testing.T, u *unit) {
				seedApplied(t, u, oneNodeSpec(zos.NetworkName(42, "mynet"), u.d.NodeID(), 1))
			},
			apply: zosWorkload(t, "access", 0, 5827), status: http.StatusConflict, field: "name", reason: "applied from a spec",
		},
		{
			name:  "a port another network uses",
			setup: func(t *testing.T, u *unit) { seedZos(t, u, 7, zosWorkload(t, "hostbits", 0, 5827)) },
			apply: zosWorkload(t, "access", 0, 5827), status: http.StatusConflict,
			field: "data.wireguard_listen_port", reason: "used by network",
		},
		{
			name: "a peer's allowed IP inside this node's subnet",
			apply: func() *zos.Workload {
				w := zosWorkload(t, "public", 0, 7169)
				w.Data.Peers[0].AllowedIPs = append(w.Data.Peers[0].AllowedIPs, "10.20.3.128/25")
				return w
			}(),
			status: http.StatusBadRequest, field: "data.peers[0].allowed_ips[6]", reason: "this node's data.subnet",
		},
		{
			name:  "a port taken in the underlay",
			apply: zosWorkload(t, "access", 0, 40005), status: http.StatusConflict,
			field: "data.wireguard_listen_port", reason: "in use",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t, "node-a", 40005)
			u.d.importKeys = true
			if tt.setup != nil {
				tt.setup(t, u)
			}
			before := stateOf(t, u)
			_, err := u.d.ZosApply(ctx, 42, tt.apply)
			requireAPIError(t, err, tt.status, tt.field)
			assert.Contains(t, err.Error(), tt.reason)
			assert.Empty(t, u.backend.Ops(), "the kernel is not touched")
			assert.Equal(t, before, stateOf(t, u), "the state is unchanged")
		})
	}
}

// stateOf returns the state file's contents as text.
func stateOf(t *testing.T, u *unit) string {
	t.Helper()
	b, err := u.store.Dump()
	require.NoError(t, err)
	return string(b)
}

func TestZosListAndDelete(t *testing.T) {
	ctx := context.Background()
	u := newUnit(t, "node-a")
	u.d.importKeys = true
	seedZos(t, u, 42, zosWorkload(t, "access", 3, 5827))
	seedZos(t, u, 7, zosWorkload(t, "hostbits", 0, 4444))
	list, err := u.d.ZosNetworks(ctx)
	require.NoError(t, err)
	assert.Equal(t, []api.ZosNetwork{
		{Network: zos.NetworkName(7, "Web_Net"), Twin: 7, Name: "Web_Net", Version: 0},
		{Network: zos.NetworkName(42, "mynet"), Twin: 42, Name: "mynet", Version: 3},
	}, list)

	t.Run("a spec cannot change a zos network", func(t *testing.T) {
		s := oneNodeSpec(zos.NetworkName(42, "mynet"), "node-a", 9)
		s.Nodes[0].Subnet = mustPrefix("10.20.2.0/24")
		_, err := u.d.Apply(ctx, s)
		requireAPIError(t, err, http.StatusConflict, "name")
		assert.Contains(t, err.Error(), "znet zos apply")
	})
	t.Run("the port is the workload's", func(t *testing.T) {
		_, err := u.d.ReservePort(ctx, zos.NetworkName(42, "mynet"), 40001)
		requireAPIError(t, err, http.StatusConflict, "listen_port")
	})
	t.Run("unknown workloads are not found", func(t *testing.T) {
		requireAPIError(t, u.d.ZosDelete(ctx, 43, "mynet"), http.StatusNotFound, "name")
		requireAPIError(t, u.d.ZosDelete(ctx, 42, "other"), http.StatusNotFound, "name")
	})
	t.Run("delete removes the network and its mapping", func(t *testing.T) {
		require.NoError(t, u.d.ZosDelete(ctx, 7, "Web_Net"))
		list, err := u.d.ZosNetworks(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)
		assert.Equal(t, "mynet", list[0].Name)
		requireAPIError(t, u.d.ZosDelete(ctx, 7, "Web_Net"), http.StatusNotFound, "name")
	})
}
