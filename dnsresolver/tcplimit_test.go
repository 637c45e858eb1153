package dnsresolver

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
)

// srcConn is one end of a pipe that says it comes from src.
type srcConn struct {
	net.Conn
	src    netip.Addr
	closed bool
}

func (c *srcConn) RemoteAddr() net.Addr {
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(c.src, 40000))
}

func (c *srcConn) Close() error {
	c.closed = true
	return c.Conn.Close()
}

// fakeTCPListener hands out connections from the sources in srcs, then
// fails with net.ErrClosed.
type fakeTCPListener struct {
	srcs  []netip.Addr
	conns []*srcConn // every connection handed out
}

func (l *fakeTCPListener) Accept() (net.Conn, error) {
	if len(l.srcs) == 0 {
		return nil, net.ErrClosed
	}
	c, _ := net.Pipe()
	sc := &srcConn{Conn: c, src: l.srcs[0]}
	l.srcs = l.srcs[1:]
	l.conns = append(l.conns, sc)
	return sc, nil
}
func (l *fakeTCPListener) Close() error   { return nil }
func (l *fakeTCPListener) Addr() net.Addr { return &net.TCPAddr{} }

func TestLimitListener(t *testing.T) {
	a, b := netip.MustParseAddr("10.20.1.5"), netip.MustParseAddr("10.20.1.6")
	var srcs []netip.Addr
	for range maxTCPConnsPerSource + 3 {
		srcs = append(srcs, a)
	}
	srcs = append(srcs, b, b, b)
	inner := &fakeTCPListener{srcs: srcs}
	limits := newConnLimits()
	limits.limit = func() int { return maxTCPConnsPerSource + 2 }
	l := &limitListener{Listener: inner, limits: limits}

	var got []net.Conn
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			break
		}
		require.NoError(t, err)
		got = append(got, c)
	}
	require.Len(t, got, maxTCPConnsPerSource+2, "per source, then in total")
	var closed []netip.Addr
	for _, c := range inner.conns {
		if c.closed {
			closed = append(closed, c.src)
		}
	}
	assert.Len(t, closed, 4, "the connections beyond the caps are closed at once")
	assert.Equal(t, maxTCPConnsPerSource, limits.bySrc[a])
	assert.Equal(t, 2, limits.bySrc[b])

	// Closing gives the place back, once.
	require.NoError(t, got[0].Close())
	_ = got[0].Close()
	assert.Equal(t, maxTCPConnsPerSource+1, limits.total)
	assert.True(t, limits.take(a))
	assert.False(t, limits.take(a))
	for _, c := range got[1:] {
		_ = c.Close()
	}
	limits.release(a)
	assert.Zero(t, limits.total)
	assert.Empty(t, limits.bySrc)
}

func TestTotalTCPLimit(t *testing.T) {
	n := totalTCPLimit()
	assert.LessOrEqual(t, n, maxTCPConns)
	assert.Positive(t, n)
}

// TestTCPConnectionCaps holds many idle TCP connections from one address
// to a real resolver: beyond the per-source cap they are closed at once,
// the others within the timeouts, and queries from elsewhere still work.
func TestTCPConnectionCaps(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	n2.start(t, n2.config([]Member{n1.member()}, rec("api", 2, 7)))

	const attempts = 3 * maxTCPConnsPerSource
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	require.NoError(t, n1.do(func() error {
		for range attempts {
			c, err := net.Dial("tcp", net.JoinHostPort(n2.gw4.String(), "53"))
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	}))
	// A connection the server closed reads EOF at once; one it holds
	// times out.
	open := func() int {
		n := 0
		for _, c := range conns {
			_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			var b [1]byte
			if _, err := c.Read(b[:]); isTimeout(err) {
				n++
			}
		}
		return n
	}
	assert.Equal(t, maxTCPConnsPerSource, open(), "held from one address")

	m, _ := n2.query(t, n2.gw4, "api.shop.internal.", dns.TypeA, true)
	assert.Equal(t, []string{"A 10.20.2.7"}, render(m.Answer), "TCP from another address still works")

	require.Eventually(t, func() bool { return open() == 0 }, 4*time.Second, 100*time.Millisecond,
		"idle connections are closed")
}

// isTimeout reports whether err is a deadline that passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
