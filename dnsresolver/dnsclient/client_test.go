package dnsclient

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/dnsresolver"
)

// opRecorder is a control socket that answers every request with a
// version and records each request's op ("config" or "delta").
func opRecorder(t *testing.T, sock string) <-chan string {
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	ops := make(chan string, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(ops)
				return
			}
			req, _ := bufio.NewReader(c).ReadString(0) // up to EOF: the client shut its side
			switch {
			case strings.Contains(req, `"op":"delta"`):
				ops <- "delta"
			case strings.Contains(req, `"op":"config"`):
				ops <- "config"
			}
			_, _ = c.Write([]byte(`{"version":"v"}`))
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = l.Close() })
	return ops
}

// TestSocketsForgetADeletedNetwork checks that Sockets sends changes
// after a first whole config, and the whole config again once the
// network was forgotten (deleted): nothing of it stays behind.
func TestSocketsForgetADeletedNetwork(t *testing.T) {
	dir := t.TempDir()
	ops := opRecorder(t, filepath.Join(dir, "shop.sock"))
	s := &Sockets{Path: func(network string) string { return filepath.Join(dir, network+".sock") }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := dnsresolver.Config{Network: "shop", NodeID: "n1", Gateway4: netip.MustParseAddr("10.20.1.1")}
	var got []string
	for _, forget := range []bool{false, false, true} {
		if forget {
			s.Forget("shop")
		}
		require.NoError(t, s.Push(ctx, "shop", cfg))
		got = append(got, <-ops)
	}
	assert.Equal(t, []string{"config", "delta", "config"}, got)
}
