package overlay

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/dataplane"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/internal/testutil/nstest"
	"github.com/znet/znet/namespaces"
)

// dataplaneEnv makes the test binary act as the data plane (see TestMain).
const dataplaneEnv = "ZNET_TEST_DATAPLANE"

func TestMain(m *testing.M) {
	if os.Getenv(dataplaneEnv) == "1" {
		os.Exit(dataplane.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// side is one simulated node: an underlay namespace on the test veth and
// the network namespace holding its WireGuard device.
type side struct {
	underlay string         // name of the underlay namespace
	ul       netns.NsHandle // its handle, owned by createNS
	addr     netip.Addr     // underlay address
	network  string         // name of the network namespace
	overlay  netip.Prefix   // overlay address of the device
	port     int            // listen port
	dev      Device
	key      wgtypes.Key
}

// newTestNet makes two sides whose underlays are joined by a veth
// (198.18.0.1/24 and 198.18.0.2/24). Everything is removed in t.Cleanup.
func newTestNet(t *testing.T) (a, b *side) {
	t.Helper()
	prefix := "zt-ov-" + testutil.RandomHex(t, 4)
	mk := func(i int) *side {
		s := &side{
			underlay: prefix + "-u" + string(rune('0'+i)),
			network:  prefix + "-n" + string(rune('0'+i)),
			addr:     netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}),
			overlay:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, 0, byte(i)}), 24),
			port:     40000 + i,
		}
		s.ul = nstest.CreateNS(t, s.underlay)
		nstest.CreateNS(t, s.network)
		s.dev = Device{IfName: IfName(prefix, s.network), NetNS: namespaces.Path(s.network), MTU: 1420}
		key, err := wgtypes.GeneratePrivateKey()
		require.NoError(t, err)
		s.key = key
		return s
	}
	a, b = mk(1), mk(2)

	ha, err := netlink.NewHandleAt(a.ul)
	require.NoError(t, err)
	defer ha.Close()
	hb, err := netlink.NewHandleAt(b.ul)
	require.NoError(t, err)
	defer hb.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "ul0"},
		PeerName:      "ul0",
		PeerNamespace: netlink.NsFd(int(b.ul)),
	}
	require.NoError(t, ha.LinkAdd(veth))
	for _, x := range []struct {
		h *netlink.Handle
		s *side
	}{{ha, a}, {hb, b}} {
		l, err := x.h.LinkByName("ul0")
		require.NoError(t, err)
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: x.s.addr.AsSlice(), Mask: net.CIDRMask(24, 32)}}
		require.NoError(t, x.h.AddrAdd(l, addr))
		require.NoError(t, x.h.LinkSetUp(l))
		lo, err := x.h.LinkByName("lo")
		require.NoError(t, err)
		require.NoError(t, x.h.LinkSetUp(lo))
	}
	return a, b
}

// config returns the configuration of s peering with other.
func (s *side) config(other *side) wgtypes.Config {
	return wgtypes.Config{
		PrivateKey: &s.key,
		ListenPort: &s.port,
		Peers: []wgtypes.PeerConfig{{
			PublicKey:         other.key.PublicKey(),
			Endpoint:          &net.UDPAddr{IP: other.addr.AsSlice(), Port: other.port},
			ReplaceAllowedIPs: true,
			AllowedIPs:        []net.IPNet{{IP: other.overlay.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)}},
		}},
	}
}

// addOverlayAddr puts s's overlay address on its device.
func (s *side) addOverlayAddr(t *testing.T) {
	t.Helper()
	ns, err := namespaces.Open(s.network)
	require.NoError(t, err)
	defer func() { _ = ns.Close() }()
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	defer h.Close()
	l, err := h.LinkByName(s.dev.IfName)
	require.NoError(t, err)
	assert.Equal(t, s.dev.MTU, l.Attrs().MTU)
	assert.NotZero(t, l.Attrs().Flags&net.FlagUp, "device is up")
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: s.overlay.Addr().AsSlice(), Mask: net.CIDRMask(s.overlay.Bits(), 32)}}
	require.NoError(t, h.AddrReplace(l, addr))
}

// ping pings to from inside namespace from and reports its output on failure.
func ping(t *testing.T, from string, to netip.Addr) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", from, "ping", "-c", "3", "-W", "1", to.String()).CombinedOutput()
	require.NoError(t, err, "ping %s from %s:\n%s", to, from, out)
}

// peerHandshake returns the last handshake with the only peer of d.
func peerHandshake(t *testing.T, b Backend, d Device) time.Time {
	t.Helper()
	dev, err := b.Show(context.Background(), d)
	require.NoError(t, err)
	require.Len(t, dev.Peers, 1)
	return dev.Peers[0].LastHandshakeTime
}

// killDataplanes kills the data planes of devs (whichever process runs for
// each ifname), waits until they are gone and removes their sockets; used
// in t.Cleanup.
func killDataplanes(t *testing.T, b *Userspace, devs ...Device) {
	t.Helper()
	for _, d := range devs {
		if pid := b.find(d.IfName); pid != 0 {
			assert.NoError(t, unix.Kill(pid, unix.SIGKILL))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			assert.True(t, b.waitGone(ctx, pid, d.IfName), "data plane %d still there", pid)
			cancel()
		}
		// A SIGKILLed data plane leaves its socket file behind.
		_ = os.Remove(socketPath(d.IfName))
	}
}

// logBuffer is a concurrency-safe buffer for a slog handler.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testOptions returns Options that run the test binary as data plane.
func testOptions(underlay netns.NsHandle, runDir string, log *slog.Logger) Options {
	return Options{
		Underlay: underlay,
		RunDir:   runDir,
		Exe:      os.Args[0],
		Env:      []string{dataplaneEnv + "=1"},
		Logger:   log,
	}
}
