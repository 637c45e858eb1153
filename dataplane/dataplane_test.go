package dataplane

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/conn"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/internal/testutil/nstest"
	"github.com/znet/znet/namespaces"
)

// TestUnderlayBind checks that the bind's sockets are made in the underlay
// namespace while the calling process stays where it is, and that packets
// sent there arrive.
func TestUnderlayBind(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	name := "zt-ov-" + testutil.RandomHex(t, 4) + "-u"
	ul := nstest.CreateNS(t, name)
	h, err := netlink.NewHandleAt(ul)
	require.NoError(t, err)
	lo, err := h.LinkByName("lo")
	require.NoError(t, err)
	require.NoError(t, h.LinkSetUp(lo))
	h.Close()
	own := nstest.ThreadsNamespace(t)

	b := &underlayBind{Bind: conn.NewDefaultBind(), underlay: ul}
	fns, port, err := b.Open(0)
	require.NoError(t, err)
	defer func() { _ = b.Close() }()
	require.NotEmpty(t, fns)
	require.NotZero(t, port)
	assert.Equal(t, own, nstest.ThreadsNamespace(t), "no thread left in the underlay")
	assert.True(t, nstest.Listens(nstest.UDPPorts(t, name), int(port)), "socket in the underlay")

	_, _, err = b.Open(0)
	assert.Equal(t, conn.ErrBindAlreadyOpen, err, "wrapped bind errors pass unchanged")

	// Send a datagram to the bind from inside the underlay.
	payload := []byte("hello underlay")
	require.NoError(t, namespaces.Do(ul, func() error {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		_, err = c.Write(payload)
		return err
	}))
	n := b.BatchSize()
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sizes := make([]int, n)
	eps := make([]conn.Endpoint, n)
	got, err := fns[0](bufs, sizes, eps) // fns[0] is IPv4
	require.NoError(t, err)
	require.Equal(t, 1, got)
	assert.Equal(t, payload, bufs[0][:sizes[0]])
	assert.Equal(t, "127.0.0.1", eps[0].DstIP().String())
	require.NoError(t, b.Close())
}

// TestDataplaneRefusesBadUnderlay starts the data plane with fd 3 not a
// namespace (inside a throwaway namespace, so nothing could leak): it must
// exit with 1 before creating anything.
func TestDataplaneRefusesBadUnderlay(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	name := "zt-ov-" + testutil.RandomHex(t, 4) + "-n"
	ns := nstest.CreateNS(t, name)
	devnull, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer func() { _ = devnull.Close() }()
	var stderr bytes.Buffer
	cmd := exec.Command(os.Args[0], Args("zt0bad", 1420, 0, "", "")...)
	cmd.Env = append(os.Environ(), dataplaneEnv+"=1")
	cmd.Stderr = &stderr
	cmd.ExtraFiles = []*os.File{devnull}
	require.NoError(t, namespaces.Start(cmd, ns))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("data plane did not exit")
	}
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, stderr.String(), "not a network namespace")
	assert.NoFileExists(t, UAPISocket("zt0bad"))
}

// formatCounter counts how often it is formatted.
type formatCounter struct{ n *int }

func (f formatCounter) String() string { *f.n++; return "peer" }

// TestWgLoggerFormatsVerboseOnlyWithDebug checks that wireguard-go's
// verbose lines, some of which it emits per packet, are not even formatted
// unless the data plane logs at debug level, and that errors always are.
func TestWgLoggerFormatsVerboseOnlyWithDebug(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			var out bytes.Buffer
			wl := wgLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: level})))
			formatted := 0
			wl.Verbosef("%v - Receiving keepalive packet", formatCounter{&formatted})
			if level == slog.LevelDebug {
				assert.Equal(t, 1, formatted)
				assert.Contains(t, out.String(), "peer - Receiving keepalive packet")
			} else {
				assert.Zero(t, formatted, "a discarded verbose line was formatted")
				assert.Empty(t, out.String())
			}
			wl.Errorf("%v - Failed to send", formatCounter{&formatted})
			assert.Contains(t, out.String(), "peer - Failed to send")
		})
	}
}
