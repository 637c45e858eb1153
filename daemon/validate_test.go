package daemon

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/ipam"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
)

// seedApplied writes, straight into the state, network s as if it had been
// applied (with wls attached), so the checks against an applied network can
// run without root. It returns the stored network.
func seedApplied(t *testing.T, u *unit, s *spec.Spec, wls ...*store.Workload) *store.Network {
	t.Helper()
	_, err := u.d.Reserve(context.Background(), s.Name)
	require.NoError(t, err)
	var n *store.Network
	require.NoError(t, u.store.Update(func(tx *store.Tx) error {
		var err error
		if n, err = tx.Network(s.Name); err != nil {
			return err
		}
		n.Spec = s.Clone()
		n.Spec.SetDefaults()
		u.d.fillSelf(n, n.Spec)
		self, _ := n.Spec.Node(u.d.NodeID())
		if n.Addrs, err = ipam.NewAllocator(self.Subnet); err != nil {
			return err
		}
		for _, w := range wls {
			if err := n.Addrs.Reserve(w.IPv4, "workload/"+w.Name); err != nil {
				return err
			}
			if err := tx.PutWorkload(w); err != nil {
				return err
			}
		}
		return tx.PutNetwork(n)
	}))
	return n
}

// storedSpec returns the spec the state holds for network.
func storedSpec(t *testing.T, u *unit, network string) *spec.Spec {
	t.Helper()
	var s *spec.Spec
	require.NoError(t, u.store.View(func(tx *store.Tx) error {
		n, err := tx.Network(network)
		if err != nil {
			return err
		}
		s = n.Spec
		return nil
	}))
	return s
}

// TestApplyRefusedBeforeTheKernel covers the specs that are refused by
// their content or the node's reservation: nothing reaches the backend and
// nothing is stored.
func TestApplyRefusedBeforeTheKernel(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	other := publicKey(t)
	tests := []struct {
		name    string
		reserve bool
		spec    func(res api.Reservation) *spec.Spec
		status  int
		field   string
	}{
		{
			name:    "invalid spec",
			reserve: true,
			spec: func(api.Reservation) *spec.Spec {
				s := oneNodeSpec("shop", "node1", 0)
				return s
			},
			status: http.StatusBadRequest, field: "generation",
		},
		{
			name:    "self not a member",
			reserve: true,
			spec: func(api.Reservation) *spec.Spec {
				s := oneNodeSpec("shop", "node2", 1)
				s.Nodes[0].PublicKey = other
				return s
			},
			status: http.StatusBadRequest, field: "nodes",
		},
		{
			name:    "own key is not the reserved one",
			reserve: true,
			spec: func(api.Reservation) *spec.Spec {
				s := oneNodeSpec("shop", "node1", 1)
				s.Nodes[0].PublicKey = publicKey(t)
				s.Nodes = append([]spec.Node{{ID: "node0", Subnet: mustPrefix("10.20.0.0/24"), PublicKey: other}}, s.Nodes...)
				return s
			},
			status: http.StatusConflict, field: "nodes[1].public_key",
		},
		{
			name:    "own endpoint port is not the reserved one",
			reserve: true,
			spec: func(res api.Reservation) *spec.Spec {
				s := oneNodeSpec("shop", "node1", 1)
				s.Nodes[0].PublicKey = res.PublicKey
				s.Nodes[0].Endpoint = "198.18.0.1:40005"
				return s
			},
			status: http.StatusConflict, field: "nodes[0].endpoint",
		},
		{
			name:    "own key but no reservation",
			reserve: false,
			spec: func(api.Reservation) *spec.Spec {
				s := oneNodeSpec("shop", "node1", 1)
				s.Nodes[0].PublicKey = publicKey(t)
				return s
			},
			status: http.StatusConflict, field: "nodes[0].public_key",
		},
		{
			name:    "a member's verbatim allowed IP is another member's subnet",
			reserve: true,
			spec: func(api.Reservation) *spec.Spec {
				s := oneNodeSpec("shop", "node1", 1)
				s.Nodes = append(s.Nodes,
					spec.Node{ID: "node2", Subnet: mustPrefix("10.20.2.0/24"), PublicKey: other, Endpoint: "198.18.0.2:40000"},
					spec.Node{ID: "node3", Subnet: mustPrefix("10.20.3.0/24"), PublicKey: publicKey(t),
						AllowedIPs: []netip.Prefix{mustPrefix("10.20.3.0/24"), mustPrefix("10.20.2.0/24")}})
				return s
			},
			status: http.StatusBadRequest, field: "nodes",
		},
		{
			name:    "other member without key",
			reserve: true,
			spec: func(api.Reservation) *spec.Spec {
				s := oneNodeSpec("shop", "node1", 1)
				s.Nodes = append(s.Nodes, spec.Node{ID: "node2", Subnet: mustPrefix("10.20.2.0/24")})
				return s
			},
			status: http.StatusBadRequest, field: "nodes[1].public_key",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t, "node1")
			ctx := context.Background()
			var res api.Reservation
			if tt.reserve {
				var err error
				res, err = u.d.Reserve(ctx, "shop")
				require.NoError(t, err)
			}
			_, err := u.d.Apply(ctx, tt.spec(res))
			requireAPIError(t, err, tt.status, tt.field)
			assert.Empty(t, u.backend.Ops(), "the kernel is not touched")
			list, err := u.d.Networks(ctx)
			require.NoError(t, err)
			if tt.reserve {
				require.Len(t, list, 1)
				assert.Equal(t, "reserved", list[0].State)
				again, err := u.d.Reserve(ctx, "shop")
				require.NoError(t, err)
				assert.Equal(t, res, again, "the reservation is unchanged")
			} else {
				assert.Empty(t, list, "no reservation is made for a spec that brings its own key")
			}
		})
	}
}

// TestApplyAgainstAppliedState covers the checks against the applied
// generation, with the applied state written straight into the store.
func TestApplyAgainstAppliedState(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	peer := publicKey(t)
	base := func() *spec.Spec {
		s := oneNodeSpec("shop", "node1", 3)
		s.Nodes = append(s.Nodes, spec.Node{ID: "node2", Subnet: mustPrefix("10.20.2.0/24"), PublicKey: peer})
		return s
	}
	web := &store.Workload{Network: "shop", Name: "web", NetNS: "/run/netns/zt-dm-none", IfName: "znet0",
		HostIf: hostIfName("web"), IPv4: mustAddr("10.20.1.2"), IPv6: mustAddr("fd00::2")}
	tests := []struct {
		name   string
		wls    []*store.Workload
		change func(s *spec.Spec)
		status int
		field  string
	}{
		{"stale generation", nil, func(s *spec.Spec) { s.Generation = 2 }, http.StatusConflict, "generation"},
		{"stale generation with the same content", nil, func(s *spec.Spec) { s.Generation = 1 }, http.StatusConflict, "generation"},
		{"same generation, other content", nil, func(s *spec.Spec) { s.Nodes[1].Subnet = mustPrefix("10.20.3.0/24") }, http.StatusConflict, "generation"},
		{"same generation, other mtu", nil, func(s *spec.Spec) { s.MTU = 1380 }, http.StatusConflict, "generation"},
		{"subnet change with workloads", []*store.Workload{web}, func(s *spec.Spec) {
			s.Generation = 4
			s.Nodes[0].Subnet = mustPrefix("10.20.5.0/24")
		}, http.StatusConflict, "nodes[0].subnet"},
		{"range change with workloads", []*store.Workload{web}, func(s *spec.Spec) {
			s.Generation = 4
			s.IPRange = mustPrefix("10.20.0.0/15")
		}, http.StatusConflict, "ip_range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t, "node1")
			seedApplied(t, u, base(), tt.wls...)
			before := storedSpec(t, u, "shop")
			s := base()
			tt.change(s)
			_, err := u.d.Apply(context.Background(), s)
			requireAPIError(t, err, tt.status, tt.field)
			assert.Empty(t, u.backend.Ops(), "the kernel is not touched")
			assert.Equal(t, before, storedSpec(t, u, "shop"), "the applied spec is unchanged")
		})
	}
}

// TestRequestsRefusedBeforeTheKernel covers the other calls' checks that
// need no kernel objects.
func TestRequestsRefusedBeforeTheKernel(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	u := newUnit(t, "node1")
	ctx := context.Background()
	seedApplied(t, u, oneNodeSpec("shop", "node1", 1), &store.Workload{
		Network: "shop", Name: "web", NetNS: "/run/netns/zt-dm-gone", IfName: "znet0",
		HostIf: hostIfName("web"), IPv4: mustAddr("10.20.1.2"), IPv6: mustAddr("fd00::2"),
	})
	_, err := u.d.Reserve(ctx, "spare")
	require.NoError(t, err)
	notNS := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notNS, []byte("x"), 0o600))
	// The calling process's own namespace: a valid path that these
	// requests must never get to use.
	const self = "/proc/self/ns/net"
	const needsSetns = true

	tests := []struct {
		name string
		// setns: the request identifies its namespace, which takes
		// CAP_SYS_ADMIN, before it gets to the check.
		setns  bool
		call   func() error
		status int
		field  string
	}{
		{"attach: bad name", false, func() error {
			_, err := u.d.Attach(ctx, "shop", api.AttachRequest{Name: "Web", NetNS: self})
			return err
		}, http.StatusBadRequest, "name"},
		{"attach: bad ifname", false, func() error {
			_, err := u.d.Attach(ctx, "shop", api.AttachRequest{Name: "db", NetNS: self, IfName: "a/b"})
			return err
		}, http.StatusBadRequest, "ifname"},
		{"attach: no netns", false, func() error {
			_, err := u.d.Attach(ctx, "shop", api.AttachRequest{Name: "db"})
			return err
		}, http.StatusBadRequest, "netns"},
		{"attach: missing netns", false, func() error {
			_, err := u.d.Attach(ctx, "shop", api.AttachRequest{Name: "db", NetNS: "/run/netns/zt-dm-nonexistent"})
			return err
		}, http.StatusBadRequest, "netns"},
		{"attach: netns is a plain file", false, func() error {
			_, err := u.d.Attach(ctx, "shop", api.AttachRequest{Name: "db", NetNS: notNS})
			return err
		}, http.StatusBadRequest, "netns"},
		{"attach: unknown network", needsSetns, func() error {
			_, err := u.d.Attach(ctx, "nope", api.AttachRequest{Name: "db", NetNS: self})
			return err
		}, http.StatusNotFound, "name"},
		{"attach: reserved only", needsSetns, func() error {
			_, err := u.d.Attach(ctx, "spare", api.AttachRequest{Name: "db", NetNS: self})
			return err
		}, http.StatusConflict, "network"},
		// web's namespace is gone, so its name may be attached again (see
		// TestWorkloadNamespaceReplaced), but never to the node's namespace.
		{"attach: a gone workload's name, into the node's namespace", false, func() error {
			_, err := u.d.Attach(ctx, "shop", api.AttachRequest{Name: "web", NetNS: self})
			return err
		}, http.StatusBadRequest, "netns"},
		{"attach: ipv4 taken", needsSetns, func() error {
			_, err := u.d.Attach(ctx, "shop", api.AttachRequest{Name: "db", NetNS: self, IPv4: mustAddr("10.20.1.2")})
			return err
		}, http.StatusConflict, "ipv4"},
		{"attach: ipv4 outside the subnet", needsSetns, func() error {
			_, err := u.d.Attach(ctx, "shop", api.AttachRequest{Name: "db", NetNS: self, IPv4: mustAddr("10.20.2.5")})
			return err
		}, http.StatusBadRequest, "ipv4"},
		{"attach: ipv4 is the network address", needsSetns, func() error {
			_, err := u.d.Attach(ctx, "shop", api.AttachRequest{Name: "db", NetNS: self, IPv4: mustAddr("10.20.1.0")})
			return err
		}, http.StatusBadRequest, "ipv4"},
		{"attach: ipv4 is the gateway", needsSetns, func() error {
			_, err := u.d.Attach(ctx, "shop", api.AttachRequest{Name: "db", NetNS: self, IPv4: mustAddr("10.20.1.1")})
			return err
		}, http.StatusBadRequest, "ipv4"},
		{"attach: ipv4 is the broadcast address", needsSetns, func() error {
			_, err := u.d.Attach(ctx, "shop", api.AttachRequest{Name: "db", NetNS: self, IPv4: mustAddr("10.20.1.255")})
			return err
		}, http.StatusBadRequest, "ipv4"},
		{"detach: bad name", false, func() error { return u.d.Detach(ctx, "shop", "Web") }, http.StatusBadRequest, "workload"},
		{"detach: unknown network", false, func() error { return u.d.Detach(ctx, "nope", "web") }, http.StatusNotFound, "name"},
		{"detach: unknown workload", false, func() error { return u.d.Detach(ctx, "shop", "db") }, http.StatusNotFound, "workload"},
		{"workloads: unknown network", false, func() error { _, err := u.d.Workloads(ctx, "nope"); return err }, http.StatusNotFound, "name"},
		{"network: bad name", false, func() error { _, err := u.d.Network(ctx, "No"); return err }, http.StatusBadRequest, "name"},
		{"network: unknown", false, func() error { _, err := u.d.Network(ctx, "nope"); return err }, http.StatusNotFound, "name"},
		{"status: unknown network", false, func() error { _, err := u.d.Status(ctx, "nope"); return err }, http.StatusNotFound, "name"},
		{"delete: unknown network", false, func() error { return u.d.DeleteNetwork(ctx, "nope", true) }, http.StatusNotFound, "name"},
		{"delete: workloads attached", false, func() error { return u.d.DeleteNetwork(ctx, "shop", false) }, http.StatusConflict, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setns {
				testutil.SkipUnlessRoot(t)
			}
			requireAPIError(t, tt.call(), tt.status, tt.field)
		})
	}
	assert.Empty(t, u.backend.Ops(), "the kernel is not touched")
	wls, err := u.d.Workloads(ctx, "shop")
	require.NoError(t, err)
	require.Len(t, wls, 1, "nothing was attached or detached")
	assert.Equal(t, api.StateNetNSGone, wls[0].State, "a workload whose namespace does not exist")
	assert.Equal(t, mustAddr("10.20.1.2"), wls[0].IPv4)
}

// unknownHostSpec reserves network "shop" on a unit whose every host
// name lookup fails (counted in *lookups), and returns a spec for it whose
// member node2 has a host name endpoint.
func unknownHostSpec(t *testing.T) (u *unit, s *spec.Spec, lookups *int) {
	u = newUnit(t, "node1")
	lookups = new(int)
	u.d.resolve = func(context.Context, string) (netip.Addr, error) {
		*lookups++
		return netip.Addr{}, errors.New("no such host")
	}
	_, err := u.d.Reserve(context.Background(), "shop")
	require.NoError(t, err)
	s = oneNodeSpec("shop", "node1", 1)
	s.Nodes = append(s.Nodes,
		spec.Node{ID: "node2", Subnet: mustPrefix("10.20.2.0/24"), PublicKey: publicKey(t), Endpoint: "node2.example:40000"})
	return u, s, lookups
}

// TestApplyChecksPeersWhenAHostIsNotFound checks that the peers are
// checked before anything is touched also when an endpoint's host name is
// not found (the desired peers, computed once with names looked up, stop
// at the first name not found).
func TestApplyChecksPeersWhenAHostIsNotFound(t *testing.T) {
	u, s, lookups := unknownHostSpec(t)
	s.Nodes = append(s.Nodes,
		spec.Node{ID: "node3", Subnet: mustPrefix("10.20.3.0/24"), PublicKey: publicKey(t),
			AllowedIPs: []netip.Prefix{mustPrefix("10.20.3.0/24"), mustPrefix("10.20.2.0/24")}})
	_, err := u.d.Apply(context.Background(), s)
	requireAPIError(t, err, http.StatusBadRequest, "nodes")
	assert.Empty(t, u.backend.Ops(), "the kernel is not touched")
	assert.Positive(t, *lookups, "names are looked up at the check")
}

// TestApplyLooksAHostUpOnce checks that an apply whose endpoint host name
// is not found asks the resolver once, and fails before the kernel is
// touched: the check computes the desired peers with names looked up, and
// a failed lookup there is the one realize would make again (under the
// daemon's lock, a DNS timeout paid twice), then roll back.
func TestApplyLooksAHostUpOnce(t *testing.T) {
	u, s, lookups := unknownHostSpec(t)
	_, err := u.d.Apply(context.Background(), s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "applying shop generation 1")
	assert.Contains(t, err.Error(), "nodes[1].endpoint")
	assert.Contains(t, err.Error(), "no such host")
	assert.Equal(t, 1, *lookups, "the host is looked up once")
	assert.Empty(t, u.backend.Ops(), "the kernel is not touched")
}
