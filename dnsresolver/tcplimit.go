package dnsresolver

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/znet/znet/internal/acceptloop"
)

// The resolver runs inside the data plane, which every workload, access
// peer and member can reach on port 53: its TCP connections must never use
// up the descriptors the WireGuard device and its UAPI socket need.
const (
	// maxTCPConns caps the resolver's open TCP connections, all addresses
	// together; at most a quarter of the process's descriptor limit.
	maxTCPConns = 1024
	// maxTCPConnsPerSource caps the open TCP connections from one
	// address. A member pulls one transfer at a time and a client needs
	// TCP only for a truncated answer, so this is plenty for anyone honest.
	maxTCPConnsPerSource = 16
	// tcpIdleTimeout closes a TCP connection that sends no next query
	// for that long (miekg/dns waits 8 s by default).
	tcpIdleTimeout = time.Second
)

// connLimits counts a resolver's open TCP connections, in total and by
// source address. Its methods are safe for concurrent use.
type connLimits struct {
	mu    sync.Mutex
	total int
	bySrc map[netip.Addr]int
	// limit returns the total cap; a field so that tests can lower it.
	limit func() int
}

func newConnLimits() *connLimits {
	return &connLimits{bySrc: map[netip.Addr]int{}, limit: totalTCPLimit}
}

// take counts a new connection from src and reports whether it is within
// the caps; a connection beyond them is not counted.
func (l *connLimits) take(src netip.Addr) bool {
	limit := l.limit()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= limit || l.bySrc[src] >= maxTCPConnsPerSource {
		return false
	}
	l.total++
	l.bySrc[src]++
	return true
}

// release forgets a connection from src that take counted.
func (l *connLimits) release(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.bySrc[src]--; l.bySrc[src] <= 0 {
		delete(l.bySrc, src)
	}
}

// totalTCPLimit is maxTCPConns, or a quarter of the process's descriptor
// limit if that is lower. It reads the limit each time, since another
// process (prlimit) may lower it while the resolver runs.
func totalTCPLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur/4 >= maxTCPConns {
		return maxTCPConns
	}
	return max(int(rl.Cur/4), 1)
}

// limitListener is a TCP listener of the resolver: it waits out temporary
// accept errors (acceptloop) and closes at once a connection beyond the
// caps of its connLimits.
type limitListener struct {
	net.Listener
	limits *connLimits
}

// Accept returns the next connection within the caps.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := acceptloop.Accept(l.Listener)
		if err != nil {
			return nil, err
		}
		src := addrOf(c.RemoteAddr())
		if !l.limits.take(src) {
			_ = c.Close()
			continue
		}
		return &limitedConn{Conn: c, limits: l.limits, src: src}, nil
	}
}

// limitedConn releases its place in its connLimits when closed.
type limitedConn struct {
	net.Conn
	limits *connLimits
	src    netip.Addr
	once   sync.Once
}

// Close closes the connection and, the first time, releases its place.
func (c *limitedConn) Close() error {
	c.once.Do(func() { c.limits.release(c.src) })
	return c.Conn.Close()
}
