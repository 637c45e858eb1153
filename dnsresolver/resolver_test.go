package dnsresolver

import (
	"context"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/internal/testutil"
)

func TestResolverLifecycle(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	cfg := n1.config([]Member{n2.member()}, rec("web", 1, 5))
	r, err := NewWithOptions(cfg, nil, Options{Do: n1.do})
	require.NoError(t, err)
	n1.waitFor(t, second, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")

	t.Run("a second resolver on the same addresses fails and leaves nothing", func(t *testing.T) {
		_, err := NewWithOptions(cfg, nil, Options{Do: n1.do})
		require.ErrorIs(t, err, unix.EADDRINUSE)
	})
	t.Run("an invalid update changes nothing", func(t *testing.T) {
		bad := cfg
		bad.Local = []Record{{Name: "x_y", IPv4: netip.MustParseAddr("10.20.1.7")}}
		require.ErrorIs(t, r.Update(bad), ErrInvalidConfig)
		n1.waitFor(t, 0, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")
	})
	t.Run("an unchanged update keeps the serial", func(t *testing.T) {
		before := r.Stats().Serial
		require.NoError(t, r.Update(cfg))
		assert.Equal(t, before, r.Stats().Serial)
	})
	t.Run("closing", func(t *testing.T) {
		require.NoError(t, r.Close())
		require.NoError(t, r.Close(), "twice")
		select {
		case <-r.Done():
		default:
			t.Fatal("Done not closed")
		}
		require.ErrorIs(t, r.Update(cfg), ErrClosed)
		assert.Equal(t, 1, r.Stats().Records)
		_, err := n1.exchange(n1.gw4, "web.shop.internal.", dns.TypeA, true)
		assert.Error(t, err, "nothing listens any more")
	})
}

func TestResolverGatewayMoves(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	cfg := n1.config([]Member{n2.member()}, rec("web", 1, 5))
	cfg.Gateway4 = netip.MustParseAddr("10.20.1.201")
	r := n1.start(t, cfg)

	// The address comes after the resolver (IP_FREEBIND).
	n1.addAddr(t, netip.MustParsePrefix("10.20.1.201/32"))
	m, _ := n1.query(t, cfg.Gateway4, "web.shop.internal.", dns.TypeA, false)
	assert.Equal(t, []string{"A 10.20.1.5"}, render(m.Answer))

	n1.addAddr(t, netip.MustParsePrefix("10.20.1.202/32"))
	moved := cfg
	moved.Gateway4 = netip.MustParseAddr("10.20.1.202")
	require.NoError(t, r.Update(moved))
	m, _ = n1.query(t, moved.Gateway4, "web.shop.internal.", dns.TypeA, true)
	assert.Equal(t, []string{"A 10.20.1.5"}, render(m.Answer))
	m, _ = n1.query(t, moved.Gateway4, "node1.node.shop.internal.", dns.TypeA, false)
	assert.Equal(t, []string{"A 10.20.1.202"}, render(m.Answer))
	_, err := n1.exchange(cfg.Gateway4, "web.shop.internal.", dns.TypeA, true)
	assert.Error(t, err, "the old address is closed")
	m, _ = n1.query(t, n1.gw6, "web.shop.internal.", dns.TypeAAAA, true)
	assert.Equal(t, []string{"AAAA fd3c:9a1e:77b2:1::5"}, render(m.Answer), "the unchanged IPv6 gateway kept serving")

	// Dropping the IPv6 gateway closes its sockets; the IPv4 ones stay.
	moved.Gateway6 = netip.Addr{}
	require.NoError(t, r.Update(moved))
	_, err = n1.exchange(n1.gw6, "web.shop.internal.", dns.TypeAAAA, true)
	assert.Error(t, err, "the IPv6 gateway is closed")
	m, _ = n1.query(t, moved.Gateway4, "web.shop.internal.", dns.TypeA, false)
	assert.Equal(t, []string{"A 10.20.1.5"}, render(m.Answer))
}

func TestControlSocket(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	cfg := n1.config([]Member{n2.member()}, rec("web", 1, 5))
	r := n1.start(t, cfg)
	sock := filepath.Join(t.TempDir(), "dns.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	stop := ServeControl(l, r)
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pushes Pushes

	t.Run("push", func(t *testing.T) {
		cfg.Local = append(cfg.Local, rec("db", 1, 6))
		require.NoError(t, pushes.Push(ctx, sock, cfg))
		n1.waitFor(t, 0, "db.shop.internal.", dns.TypeAAAA, "AAAA fd3c:9a1e:77b2:1::6")
	})
	t.Run("query", func(t *testing.T) {
		s, err := Query(ctx, sock)
		require.NoError(t, err)
		assert.Equal(t, r.Stats().Serial, s.Serial)
		assert.Equal(t, 2, s.Records)
		require.Contains(t, s.Members, "node2")
		assert.Eventually(t, func() bool {
			s, err := Query(ctx, sock)
			return err == nil && s.Members["node2"].Err != ""
		}, 5*time.Second, 10*time.Millisecond, "node2 runs no resolver")
	})
	t.Run("members added and removed by deltas", func(t *testing.T) {
		extra := Member{ID: "node9", Gateway4: netip.MustParseAddr("10.20.9.1"), Subnet4: netip.MustParsePrefix("10.20.9.0/24")}
		plus := cfg
		plus.Members = append(slices.Clone(cfg.Members), extra)
		_, versioned := pushes.last(sock)
		require.True(t, versioned, "the resolver answered a version: the pushes below are deltas")
		require.NoError(t, pushes.Push(ctx, sock, plus))
		s, err := Query(ctx, sock)
		require.NoError(t, err)
		assert.Contains(t, s.Members, "node9")
		require.NoError(t, pushes.Push(ctx, sock, cfg))
		s, err = Query(ctx, sock)
		require.NoError(t, err)
		assert.NotContains(t, s.Members, "node9")
		assert.Contains(t, s.Members, "node2")
		n1.waitFor(t, 0, "db.shop.internal.", dns.TypeAAAA, "AAAA fd3c:9a1e:77b2:1::6")
	})
	t.Run("a request that is not one", func(t *testing.T) {
		c, err := net.Dial("unix", sock)
		require.NoError(t, err)
		defer func() { _ = c.Close() }()
		_, err = c.Write([]byte(`{"op":"config","config":{},"extra":1}`))
		require.NoError(t, err)
		require.NoError(t, c.(*net.UnixConn).CloseWrite())
		answer, err := io.ReadAll(c)
		require.NoError(t, err)
		assert.Contains(t, string(answer), `"kind":"invalid"`)
		assert.Contains(t, string(answer), "extra")
		s, err := Query(ctx, sock)
		require.NoError(t, err)
		assert.Equal(t, 2, s.Records, "nothing changed")
	})
	t.Run("invalid config", func(t *testing.T) {
		bad := cfg
		bad.Network = "no.dots"
		require.ErrorIs(t, pushes.Push(ctx, sock, bad), ErrInvalidConfig)
	})
	t.Run("closed resolver", func(t *testing.T) {
		require.NoError(t, r.Close())
		require.ErrorIs(t, pushes.Push(ctx, sock, cfg), ErrClosed)
		_, err := Query(ctx, sock)
		require.NoError(t, err, "stats stay readable")
	})
	t.Run("stopped", func(t *testing.T) {
		stop()
		stop()
		_, err := Query(ctx, sock)
		require.Error(t, err)
		require.Error(t, pushes.Push(ctx, sock, cfg))
	})
}
