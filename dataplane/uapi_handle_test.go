package dataplane

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// newTestDevice returns a wireguard-go device on a channel TUN and a
// channel bind (no socket opened), up, closed when the test ends.
func newTestDevice(t *testing.T) *device.Device {
	t.Helper()
	dev := device.NewDevice(tuntest.NewChannelTUN().TUN(), bindtest.NewChannelBinds()[0], device.NewLogger(device.LogLevelSilent, ""))
	t.Cleanup(dev.Close)
	// Up now: the TUN's up event would bring it up at a moment of its own.
	require.NoError(t, dev.Up())
	return dev
}

// converse writes script to handle over a socket pair, ends its side of
// the writing, and returns all handle answered until it closed the
// connection.
func converse(t *testing.T, handle func(net.Conn), script string) string {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	client, server := fileConn(t, fds[0]), fileConn(t, fds[1])
	defer func() { _ = client.Close() }()
	require.NoError(t, client.SetDeadline(time.Now().Add(10*time.Second)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		handle(server)
	}()
	_, err = io.WriteString(client, script)
	require.NoError(t, err)
	require.NoError(t, client.(*net.UnixConn).CloseWrite())
	out, err := io.ReadAll(client)
	require.NoError(t, err)
	<-done
	return string(out)
}

// fileConn returns a net.Conn of socket fd, which it takes over.
func fileConn(t *testing.T, fd int) net.Conn {
	t.Helper()
	f := os.NewFile(uintptr(fd), "socketpair")
	defer func() { _ = f.Close() }()
	c, err := net.FileConn(f)
	require.NoError(t, err)
	return c
}

// TestHandleUAPIAsWireguardGo checks that handleUAPI answers every kind of
// request byte for byte as device.IpcHandle does.
func TestHandleUAPIAsWireguardGo(t *testing.T) {
	key := strings.Repeat("11", 32)
	scripts := map[string]string{
		"get":               "get=1\n\n",
		"set then get":      "set=1\nprivate_key=" + key + "\nlisten_port=0\n\nget=1\n\n",
		"bad set, then get": "set=1\nbogus=1\n\nget=1\n\n",
		"get with trailing": "get=1\nx",
	}
	log := slog.New(slog.DiscardHandler)
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			dev := newTestDevice(t) // a script leaves the device as it found it, or sets it the same
			want := converse(t, dev.IpcHandle, script)
			got := converse(t, func(c net.Conn) { handleUAPI(log, dev, c) }, script)
			assert.Equal(t, want, got)
			assert.Contains(t, want, "errno=")
		})
	}
	t.Run("unknown operation", func(t *testing.T) {
		got := converse(t, func(c net.Conn) { handleUAPI(log, newTestDevice(t), c) }, "get=2\n")
		assert.Empty(t, got, "closed without an answer, as device.IpcHandle does")
	})
}

// TestHandleUAPIGarbage checks that a read (one connection, one get, as
// znetd's status makes) leaves little garbage: device.IpcHandle's 8 KiB
// of buffers per connection landed on fresh pages of an idle data plane.
func TestHandleUAPIGarbage(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates too")
	}
	dev := newTestDevice(t)
	log := slog.New(slog.DiscardHandler)
	perRead := func(handle func(net.Conn)) uint64 {
		const reads = 50
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range reads {
			r := bufio.NewReader(strings.NewReader(converse(t, handle, "get=1\n\n")))
			line, err := r.ReadString('\n')
			require.NoError(t, err)
			require.NotEmpty(t, line)
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / reads
	}
	perRead(dev.IpcHandle) // the device's own start allocates too
	theirs := perRead(dev.IpcHandle)
	ours := perRead(func(c net.Conn) { handleUAPI(log, dev, c) })
	t.Logf("bytes allocated per read: device.IpcHandle %d, handleUAPI %d", theirs, ours)
	assert.Less(t, ours, theirs-6<<10, "at least 6 KiB less garbage per read")
}
