package overlay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/internal/testutil/nstest"
)

// skipUnlessKernelWireGuard skips when the kernel cannot make WireGuard
// links (as on machines without the module).
func skipUnlessKernelWireGuard(t *testing.T) {
	t.Helper()
	if err := ProbeKernel(); err != nil {
		require.ErrorIs(t, err, ErrKernelUnsupported, "the probe itself failed")
		t.Skipf("kernel WireGuard: %v", err)
	}
}

// TestNewChoosesByProbe checks that auto follows the probe and that kernel
// is refused where the probe fails.
func TestNewChoosesByProbe(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	own := nstest.ThreadsNamespace(t)
	probe := ProbeKernel()
	assert.Equal(t, own, nstest.ThreadsNamespace(t), "probe leaves no thread behind")
	if probe != nil {
		require.ErrorIs(t, probe, ErrKernelUnsupported)
	}
	tests := []struct {
		kind, want string
		err        error
	}{
		{"auto", map[bool]string{true: "kernel", false: "userspace"}[probe == nil], nil},
		{"", map[bool]string{true: "kernel", false: "userspace"}[probe == nil], nil},
		{"userspace", "userspace", nil},
		{"kernel", "kernel", probe},
	}
	for _, tt := range tests {
		t.Run("kind "+tt.kind, func(t *testing.T) {
			b, err := New(tt.kind, Options{RunDir: t.TempDir(), Exe: "/bin/false"})
			if tt.err != nil {
				require.ErrorIs(t, err, ErrKernelUnsupported)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, b.Kind())
			require.NoError(t, b.(interface{ Close() error }).Close())
		})
	}
}

// newTestKernel returns a kernel backend closed in t.Cleanup.
func newTestKernel(t *testing.T, underlay netns.NsHandle) *Kernel {
	t.Helper()
	b, err := New("kernel", Options{Underlay: underlay})
	require.NoError(t, err)
	k := b.(*Kernel)
	t.Cleanup(func() { assert.NoError(t, k.Close()) })
	return k
}

// TestKernel joins two kernel devices across two underlays and checks
// adoption and removal.
func TestKernel(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	skipUnlessKernelWireGuard(t)
	testutil.GoroutineLeakCheck(t)
	a, b := newTestNet(t)
	ka, kb := newTestKernel(t, a.ul), newTestKernel(t, b.ul)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	step(t, "ensure creates the devices", func(t *testing.T) {
		for _, x := range []struct {
			k *Kernel
			s *side
		}{{ka, a}, {kb, b}} {
			pid, err := x.k.Ensure(ctx, x.s.dev)
			require.NoError(t, err)
			assert.Zero(t, pid)
			assert.Zero(t, x.k.PID(x.s.dev))
		}
	})

	step(t, "configure and ping across", func(t *testing.T) {
		require.NoError(t, ka.Configure(ctx, a.dev, a.config(b)))
		require.NoError(t, kb.Configure(ctx, b.dev, b.config(a)))
		a.addOverlayAddr(t)
		b.addOverlayAddr(t)
		ping(t, a.network, b.overlay.Addr())
		ping(t, b.network, a.overlay.Addr())
	})

	step(t, "the UDP socket lives in the underlay", func(t *testing.T) {
		for _, s := range []*side{a, b} {
			assert.True(t, nstest.Listens(nstest.UDPPorts(t, s.underlay), s.port))
			assert.False(t, nstest.Listens(nstest.UDPPorts(t, s.network), s.port))
		}
	})

	step(t, "ensure again and a new backend adopt without a reset", func(t *testing.T) {
		hs := peerHandshake(t, ka, a.dev)
		require.False(t, hs.IsZero())
		_, err := ka.Ensure(ctx, a.dev)
		require.NoError(t, err)
		k2 := newTestKernel(t, a.ul)
		_, err = k2.Ensure(ctx, a.dev)
		require.NoError(t, err)
		assert.Equal(t, hs, peerHandshake(t, k2, a.dev))
		dev, err := k2.Show(ctx, a.dev)
		require.NoError(t, err)
		assert.Equal(t, a.key, dev.PrivateKey)
	})

	step(t, "delete removes the device", func(t *testing.T) {
		for _, x := range []struct {
			k *Kernel
			s *side
		}{{ka, a}, {kb, b}} {
			require.NoError(t, x.k.Delete(ctx, x.s.dev))
			_, err := x.k.Show(ctx, x.s.dev)
			require.ErrorIs(t, err, ErrNotFound)
			err = x.k.Configure(ctx, x.s.dev, wgtypes.Config{})
			require.ErrorIs(t, err, ErrNotFound)
			require.NoError(t, x.k.Delete(ctx, x.s.dev), "delete twice")
		}
	})

	t.Run("replace peers is refused", func(t *testing.T) {
		err := ka.Configure(ctx, a.dev, wgtypes.Config{ReplacePeers: true})
		require.True(t, errors.Is(err, ErrReplacePeers))
	})
}
