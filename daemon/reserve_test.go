package daemon

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/overlay/overlaytest"
	"github.com/znet/znet/store"
)

func TestNew(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	dir := t.TempDir()
	st, err := store.Open(dir)
	require.NoError(t, err)
	defer func() { _ = st.Close() }()
	b := overlaytest.New("")

	_, err = New(Config{NodeID: "Node_1", Store: st, Backend: b})
	require.Error(t, err, "an id that is not a DNS label")

	d, err := New(Config{NodeID: "node1", Store: st, Backend: b})
	require.NoError(t, err)
	assert.Equal(t, "node1", d.NodeID())

	_, err = New(Config{NodeID: "node1", Store: st, Backend: b})
	require.NoError(t, err, "the same node again")

	_, err = New(Config{NodeID: "node2", Store: st, Backend: b})
	require.Error(t, err, "a state dir of another node")
	assert.Contains(t, err.Error(), `"node1"`)
	require.NoError(t, st.View(func(tx *store.Tx) error {
		assert.Equal(t, "node1", tx.NodeID(), "the recorded id is kept")
		return nil
	}))
}

func TestReserveIsIdempotent(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	u := newUnit(t, "node1")
	ctx := context.Background()

	first, err := u.d.Reserve(ctx, "shop")
	require.NoError(t, err)
	assert.Equal(t, "node1", first.NodeID)
	assert.Equal(t, 40000, first.ListenPort)
	_, err = wgtypes.ParseKey(first.PublicKey)
	require.NoError(t, err)

	again, err := u.d.Reserve(ctx, "shop")
	require.NoError(t, err)
	assert.Equal(t, first, again, "same key and port the second time")

	require.NoError(t, u.store.View(func(tx *store.Tx) error {
		n, err := tx.Network("shop")
		require.NoError(t, err)
		priv, err := wgtypes.ParseKey(n.PrivateKey)
		require.NoError(t, err)
		assert.Equal(t, first.PublicKey, priv.PublicKey().String(), "stored private key matches the reserved public key")
		assert.Nil(t, n.Spec)
		return nil
	}))
	assert.Empty(t, u.backend.Ops(), "reserving touches no device")

	list, err := u.d.Networks(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, api.NetworkSummary{Name: "shop", State: "reserved"}, list[0])

	st, err := u.d.Status(ctx, "shop")
	require.NoError(t, err)
	require.Len(t, st, 1)
	assert.Equal(t, first.PublicKey, st[0].PublicKey)
	assert.Equal(t, 40000, st[0].ListenPort)
	assert.NotEmpty(t, st[0].Problems, "a reserved network says it is not applied")
}

func TestReservePorts(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	tests := []struct {
		name     string
		busy     []int
		networks []string
		want     []int
	}{
		{"unique across networks", nil, []string{"a", "b", "c"}, []int{40000, 40001, 40002}},
		{"skips busy ports", []int{40000, 40002}, []string{"a", "b", "c"}, []int{40001, 40003, 40004}},
		{"a busy port already handed out does not matter", []int{40001}, []string{"a", "b"}, []int{40000, 40002}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t, "node1", tt.busy...)
			ctx := context.Background()
			var got []int
			for _, n := range tt.networks {
				r, err := u.d.Reserve(ctx, n)
				require.NoError(t, err)
				got = append(got, r.ListenPort)
			}
			assert.Equal(t, tt.want, got)
			for i, n := range tt.networks {
				r, err := u.d.Reserve(ctx, n)
				require.NoError(t, err)
				assert.Equal(t, tt.want[i], r.ListenPort, "again for %s", n)
			}
		})
	}
}

func TestReserveNoFreePort(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	busy := []int{}
	for p := 40000; p <= 40009; p++ {
		busy = append(busy, p)
	}
	u := newUnit(t, "node1", busy...)
	_, err := u.d.Reserve(context.Background(), "shop")
	requireAPIError(t, err, http.StatusConflict, "listen_port")

	u = newUnit(t, "node1")
	for i := range 10 {
		_, err := u.d.Reserve(context.Background(), string(rune('a'+i)))
		require.NoError(t, err)
	}
	_, err = u.d.Reserve(context.Background(), "k")
	requireAPIError(t, err, http.StatusConflict, "listen_port")
	list, err := u.d.Networks(context.Background())
	require.NoError(t, err)
	assert.Len(t, list, 10, "a failed reservation stores nothing")
}

func TestReserveBadNames(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	u := newUnit(t, "node1")
	for _, name := range []string{"", "Shop", "-shop", "shop-", "a_b", "a.b", strings.Repeat("a", 33)} {
		t.Run(name, func(t *testing.T) {
			_, err := u.d.Reserve(context.Background(), name)
			requireAPIError(t, err, http.StatusBadRequest, "name")
		})
	}
	list, err := u.d.Networks(context.Background())
	require.NoError(t, err)
	assert.Empty(t, list)
}

func TestReserveConcurrent(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	u := newUnit(t, "node1")
	ctx := context.Background()
	names := []string{"a", "b", "c", "d", "a", "b", "c", "d"}
	got := make([]api.Reservation, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { got[i], errs[i] = u.d.Reserve(ctx, name) })
	}
	wg.Wait()
	ports := map[int]string{}
	for i, name := range names {
		require.NoError(t, errs[i])
		assert.Equal(t, got[i], got[(i+4)%8], "both reservations of %s are the same", name)
		if other, ok := ports[got[i].ListenPort]; ok {
			assert.Equal(t, name, other, "port %d given twice", got[i].ListenPort)
		}
		ports[got[i].ListenPort] = name
	}
	assert.Len(t, ports, 4)
}
