package daemon

import (
	"errors"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/api"
	"github.com/znet/znet/dataplane"
	"github.com/znet/znet/dnsresolver/dnsresolvertest"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/netconf/netconftest"
	"github.com/znet/znet/overlay/overlaytest"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
)

// dataplaneEnv makes the test binary act as a userspace data plane, so the
// privileged tests need no znetd binary (see TestMain and newTestNode).
const dataplaneEnv = "ZNET_DAEMON_TEST_DATAPLANE"

func TestMain(m *testing.M) {
	if os.Getenv(dataplaneEnv) == "1" {
		os.Exit(dataplane.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// newNodeID returns a node id no other test uses: "zt" and random hex, so
// every namespace the daemon makes (zn-<node-id>.<network>) is unique on
// the machine and easy to find for cleanup.
func newNodeID(t testing.TB) string { return "zt" + testutil.RandomHex(t, 4) }

// publicKey returns a fresh WireGuard public key (base64).
func publicKey(t testing.TB) string {
	t.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	require.NoError(t, err)
	return k.PublicKey().String()
}

// requireAPIError checks that err is what the API would answer with the
// HTTP status and the field given.
func requireAPIError(t *testing.T, err error, status int, field string) {
	t.Helper()
	require.Error(t, err)
	got, body := api.StatusOf(err)
	require.Equal(t, status, got, "status of %v", err)
	assert.Equal(t, field, body.Field, "field of %v", err)
	switch status {
	case http.StatusBadRequest:
		// api.Service: bad input is an api.ErrInvalid or a *spec.FieldError.
		assert.True(t, errors.Is(err, api.ErrInvalid) || errors.Is(err, spec.ErrInvalid), "%v is an invalid-input error", err)
	case http.StatusConflict:
		assert.ErrorIs(t, err, api.ErrConflict)
	case http.StatusNotFound:
		assert.ErrorIs(t, err, api.ErrNotFound)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// unit is a daemon over a fake backend and a state file in a temporary
// directory: enough for everything that fails before the kernel is touched.
type unit struct {
	d       *Daemon
	store   *store.Store
	backend *overlaytest.Backend
	host    *netconftest.Host
	dir     string
	id      string
	busy    map[int]bool
	// dns and resolvers, when set before newDaemon, are the daemon's
	// resolver client and resolver host.
	dns       *dnsresolvertest.Client
	resolvers ResolverHost
}

// newUnit returns a unit for node id; busy ports are refused by PortFree.
// The ports handed out are 40000-40009.
func newUnit(t *testing.T, id string, busy ...int) *unit {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, st.Close()) })
	u := &unit{store: st, backend: overlaytest.New("userspace"), host: netconftest.New(), dir: dir, id: id, busy: map[int]bool{}}
	for _, p := range busy {
		u.busy[p] = true
	}
	u.d = u.newDaemon(t)
	return u
}

// newDaemon returns a daemon over u's state, backend and namespaces: a
// restart of znetd, with the kernel objects as they are.
func (u *unit) newDaemon(t *testing.T) *Daemon {
	t.Helper()
	cfg := Config{
		NodeID: u.id, Store: u.store, Backend: u.backend, Host: u.host,
		PortMin: 40000, PortMax: 40009,
		PortFree:  func(p int) bool { return !u.busy[p] },
		Resolvers: u.resolvers,
	}
	if u.dns != nil {
		cfg.DNS = u.dns // a nil *Client would be a non-nil interface
	}
	d, err := New(cfg)
	require.NoError(t, err)
	d.etcNetns = filepath.Join(u.dir, "etc-netns") // the fakes' workloads' resolv.conf
	t.Cleanup(d.Close)
	return d
}

// oneNodeSpec returns generation gen of network name with only node id,
// whose entry leaves out its key (the reserved one is used).
func oneNodeSpec(name, id string, gen uint64) *spec.Spec {
	return &spec.Spec{
		Name: name, Generation: gen,
		IPRange: mustPrefix("10.20.0.0/16"),
		Nodes:   []spec.Node{{ID: id, Subnet: mustPrefix("10.20.1.0/24")}},
	}
}
