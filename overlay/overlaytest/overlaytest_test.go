package overlaytest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/overlay"
)

func key(t *testing.T) wgtypes.Key {
	t.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	require.NoError(t, err)
	return k
}

func ipnet(s string) net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return *n
}

// render writes a device's peers as "key-prefix allowed-ips" lines.
func render(d *wgtypes.Device) []string {
	var out []string
	for _, p := range d.Peers {
		s := p.PublicKey.String()[:4]
		for _, a := range p.AllowedIPs {
			s += " " + a.String()
		}
		out = append(out, s)
	}
	return out
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	b := New("")
	assert.Equal(t, "userspace", b.Kind())
	d := overlay.Device{IfName: "zn1", NetNS: "/run/netns/x", MTU: 1420}

	_, err := b.Show(ctx, d)
	require.ErrorIs(t, err, overlay.ErrNotFound)
	require.ErrorIs(t, b.Configure(ctx, d, wgtypes.Config{}), overlay.ErrNotFound)

	pid, err := b.Ensure(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, 1000, pid)
	again, err := b.Ensure(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, pid, again, "adopted")
	assert.Equal(t, pid, b.PID(d))
	assert.Equal(t, []string{"zn1"}, b.IfNames())

	b.Crash("zn1")
	pid2, err := b.Ensure(ctx, d)
	require.NoError(t, err)
	assert.NotEqual(t, pid, pid2)

	require.NoError(t, b.Delete(ctx, d))
	require.NoError(t, b.Delete(ctx, d), "delete twice")
	assert.Zero(t, b.PID(d))
	assert.Empty(t, b.IfNames())
	assert.Equal(t, []string{
		"Show zn1", "Configure zn1", "Ensure zn1", "Ensure zn1", "Ensure zn1", "Delete zn1", "Delete zn1",
	}, b.Ops())
	b.ResetCalls()
	assert.Empty(t, b.Calls())
}

func TestKernelKindHasNoPID(t *testing.T) {
	b := New("kernel")
	pid, err := b.Ensure(context.Background(), overlay.Device{IfName: "zn1", NetNS: "/x"})
	require.NoError(t, err)
	assert.Zero(t, pid)
	dev, err := b.Show(context.Background(), overlay.Device{IfName: "zn1"})
	require.NoError(t, err)
	assert.Equal(t, wgtypes.LinuxKernel, dev.Type)
}

func TestConfigure(t *testing.T) {
	ctx := context.Background()
	d := overlay.Device{IfName: "zn1", NetNS: "/x"}
	priv, p1, p2 := key(t), key(t).PublicKey(), key(t).PublicKey()
	port := 40001

	tests := []struct {
		name  string
		cfgs  []wgtypes.Config
		peers []string
		err   error
	}{
		{
			name: "add two peers",
			cfgs: []wgtypes.Config{{Peers: []wgtypes.PeerConfig{
				{PublicKey: p1, AllowedIPs: []net.IPNet{ipnet("10.20.1.0/24")}},
				{PublicKey: p2, AllowedIPs: []net.IPNet{ipnet("10.20.2.0/24")}},
			}}},
			peers: []string{p1.String()[:4] + " 10.20.1.0/24", p2.String()[:4] + " 10.20.2.0/24"},
		},
		{
			name: "append and replace allowed IPs",
			cfgs: []wgtypes.Config{
				{Peers: []wgtypes.PeerConfig{{PublicKey: p1, AllowedIPs: []net.IPNet{ipnet("10.20.1.0/24")}}}},
				{Peers: []wgtypes.PeerConfig{{PublicKey: p1, AllowedIPs: []net.IPNet{ipnet("10.20.9.0/24")}}}},
				{Peers: []wgtypes.PeerConfig{{PublicKey: p2, AllowedIPs: []net.IPNet{ipnet("10.20.2.0/24")}}}},
				{Peers: []wgtypes.PeerConfig{{PublicKey: p2, ReplaceAllowedIPs: true, AllowedIPs: []net.IPNet{ipnet("10.20.3.0/24")}}}},
			},
			peers: []string{p1.String()[:4] + " 10.20.1.0/24 10.20.9.0/24", p2.String()[:4] + " 10.20.3.0/24"},
		},
		{
			name: "remove twice and update only a missing peer",
			cfgs: []wgtypes.Config{
				{Peers: []wgtypes.PeerConfig{{PublicKey: p1}, {PublicKey: p2}}},
				{Peers: []wgtypes.PeerConfig{{PublicKey: p1, Remove: true}}},
				{Peers: []wgtypes.PeerConfig{{PublicKey: p1, Remove: true}}},
				{Peers: []wgtypes.PeerConfig{{PublicKey: p1, UpdateOnly: true, AllowedIPs: []net.IPNet{ipnet("10.20.1.0/24")}}}},
			},
			peers: []string{p2.String()[:4]},
		},
		{
			name: "replace peers is refused",
			cfgs: []wgtypes.Config{{ReplacePeers: true}},
			err:  overlay.ErrReplacePeers,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New("")
			_, err := b.Ensure(ctx, d)
			require.NoError(t, err)
			for _, c := range tt.cfgs {
				err = b.Configure(ctx, d, c)
				if err != nil {
					break
				}
			}
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			dev, err := b.Show(ctx, d)
			require.NoError(t, err)
			assert.Equal(t, tt.peers, render(dev))
		})
	}

	t.Run("key, port and keepalive", func(t *testing.T) {
		b := New("")
		_, err := b.Ensure(ctx, d)
		require.NoError(t, err)
		dur := 25 * time.Second
		cfg := wgtypes.Config{PrivateKey: &priv, ListenPort: &port, Peers: []wgtypes.PeerConfig{{
			PublicKey: p1, Endpoint: &net.UDPAddr{IP: net.IPv4(198, 18, 0, 2), Port: 40002}, PersistentKeepaliveInterval: &dur,
		}}}
		require.NoError(t, b.Configure(ctx, d, cfg))
		dev, err := b.Show(ctx, d)
		require.NoError(t, err)
		assert.Equal(t, priv, dev.PrivateKey)
		assert.Equal(t, priv.PublicKey(), dev.PublicKey)
		assert.Equal(t, port, dev.ListenPort)
		require.Len(t, dev.Peers, 1)
		assert.Equal(t, "198.18.0.2:40002", dev.Peers[0].Endpoint.String())
		assert.Equal(t, dur, dev.Peers[0].PersistentKeepaliveInterval)

		// Show returns a copy; the recorded config too.
		dev.Peers[0].Endpoint.Port = 1
		dev2, err := b.Show(ctx, d)
		require.NoError(t, err)
		assert.Equal(t, 40002, dev2.Peers[0].Endpoint.Port)
		calls := b.Calls()
		require.Equal(t, OpConfigure, calls[1].Op)
		assert.Equal(t, &priv, calls[1].Config.PrivateKey)
	})
}

func TestFailNext(t *testing.T) {
	ctx := context.Background()
	b := New("")
	d := overlay.Device{IfName: "zn1", NetNS: "/x"}
	boom := errors.New("boom")
	b.FailNext(OpEnsure, boom)
	_, err := b.Ensure(ctx, d)
	require.ErrorIs(t, err, boom)
	assert.Empty(t, b.IfNames(), "a failed call changes nothing")
	_, err = b.Ensure(ctx, d)
	require.NoError(t, err, "only the next call fails")

	b.FailNext(OpDelete, boom)
	require.ErrorIs(t, b.Delete(ctx, d), boom)
	assert.Equal(t, []string{"zn1"}, b.IfNames())
}
