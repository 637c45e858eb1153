package overlay

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/internal/testutil"
)

// serveUAPI serves a wireguard-go device (on a channel TUN and bind, no
// kernel) on a Unix socket in a temporary directory and returns its path.
func serveUAPI(t *testing.T) string {
	t.Helper()
	dev := device.NewDevice(tuntest.NewChannelTUN().TUN(), bindtest.NewChannelBinds()[0], device.NewLogger(device.LogLevelSilent, ""))
	path := filepath.Join(t.TempDir(), "wg.sock")
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			dev.IpcHandle(c)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		dev.Close()
	})
	return path
}

// TestUAPIRoundTrip configures a real wireguard-go device through uapiSet
// and reads it back through uapiGet.
func TestUAPIRoundTrip(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	path := serveUAPI(t)
	ctx := t.Context()
	key, err := wgtypes.GeneratePrivateKey()
	require.NoError(t, err)
	peer, err := wgtypes.GeneratePrivateKey()
	require.NoError(t, err)
	port, keep := 0, 25*time.Second
	_, v4, _ := net.ParseCIDR("10.20.2.0/24")
	_, v6, _ := net.ParseCIDR("fd00:1:2:2::/64")
	cfg := wgtypes.Config{PrivateKey: &key, ListenPort: &port, Peers: []wgtypes.PeerConfig{{
		PublicKey:                   peer.PublicKey(),
		Endpoint:                    &net.UDPAddr{IP: net.ParseIP("198.18.0.2"), Port: 51820},
		PersistentKeepaliveInterval: &keep,
		AllowedIPs:                  []net.IPNet{*v4, *v6},
	}}}
	require.NoError(t, uapiSet(ctx, path, cfg))

	dev, err := uapiGet(ctx, path, "zn0")
	require.NoError(t, err)
	assert.Equal(t, "zn0", dev.Name)
	assert.Equal(t, key, dev.PrivateKey)
	assert.Equal(t, key.PublicKey(), dev.PublicKey)
	require.Len(t, dev.Peers, 1)
	p := dev.Peers[0]
	assert.Equal(t, peer.PublicKey(), p.PublicKey)
	// bindtest's endpoints are all loopback; the port is what it keeps.
	require.NotNil(t, p.Endpoint)
	assert.Equal(t, 51820, p.Endpoint.Port)
	assert.Equal(t, keep, p.PersistentKeepaliveInterval)
	assert.Equal(t, []string{"10.20.2.0/24", "fd00:1:2:2::/64"}, []string{p.AllowedIPs[0].String(), p.AllowedIPs[1].String()})
	assert.True(t, p.LastHandshakeTime.IsZero(), "never shook hands")
	assert.Equal(t, 1, p.ProtocolVersion)

	// A peer removed is gone; a device refusal is an error.
	require.NoError(t, uapiSet(ctx, path, wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: peer.PublicKey(), Remove: true}}}))
	dev, err = uapiGet(ctx, path, "zn0")
	require.NoError(t, err)
	assert.Empty(t, dev.Peers)
	bad := -1
	assert.Error(t, uapiSet(ctx, path, wgtypes.Config{ListenPort: &bad}))
}

// TestUAPIDeadline checks that a data plane that accepts and never
// answers (as one stopped with SIGSTOP: the kernel queues the connection)
// gives ErrNotResponding by the deadline, and a missing one ErrNotFound.
func TestUAPIDeadline(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	path := filepath.Join(t.TempDir(), "wg.sock")
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer func() { _ = l.Close() }() // never accepts: a stopped process

	for _, tt := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"get", func(ctx context.Context) error { _, err := uapiGet(ctx, path, "zn0"); return err }},
		{"set", func(ctx context.Context) error { return uapiSet(ctx, path, wgtypes.Config{}) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := tt.call(ctx)
			require.ErrorIs(t, err, ErrNotResponding)
			assert.Less(t, time.Since(start), time.Second)
		})
	}
	_, err = uapiGet(t.Context(), filepath.Join(t.TempDir(), "none.sock"), "zn0")
	require.ErrorIs(t, err, ErrNotFound)
}
