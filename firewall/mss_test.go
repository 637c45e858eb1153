package firewall

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
)

// smallOverlay is the overlay MTU in TestClampMSS; the lab's other links
// keep 1500, so only a clamp makes TCP agree on segments that fit it.
const smallOverlay = 1300

// mss connects from client to a listener on server at dst and returns the
// segment size each end settled on (TCP_MAXSEG of the dialled and the
// accepted socket).
func mss(t *testing.T, client, server *testNS, dst netip.AddrPort) (dialled, accepted int) {
	t.Helper()
	var ln *net.TCPListener
	require.NoError(t, namespaces.Do(server.ns, func() error {
		var err error
		ln, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(dst))
		return err
	}))
	defer func() { _ = ln.Close() }()
	var c *net.TCPConn
	require.NoError(t, namespaces.Do(client.ns, func() error {
		conn, err := net.DialTimeout("tcp", dst.String(), 2*dialTimeout)
		if err == nil {
			c = conn.(*net.TCPConn)
		}
		return err
	}))
	defer func() { _ = c.Close() }()
	s, err := ln.AcceptTCP()
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	return maxSeg(t, c), maxSeg(t, s)
}

func maxSeg(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	var v int
	var serr error
	require.NoError(t, rc.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG) }))
	require.NoError(t, serr)
	return v
}

// TestClampMSS checks that a TCP connection through the overlay, either
// way and in both families, settles on segments that fit the overlay's MTU
// although both ends sit on 1500-byte links: the clamp lowers both the
// SYN's and the SYN-ACK's MSS, whichever way they cross the overlay.
func TestClampMSS(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	l := newLab(t)
	wg := l.net.link(t, "wg0")
	require.NoError(t, l.net.h.LinkSetMTU(wg, smallOverlay))
	ports := []struct {
		name           string
		toRemote, toA  netip.AddrPort
		maxHdr, maxSeg int
	}{
		{"IPv4", netip.AddrPortFrom(remote4, 7001), netip.AddrPortFrom(a4, 7002), 40, smallOverlay - 40},
		{"IPv6", netip.AddrPortFrom(remote6, 7003), netip.AddrPortFrom(a6, 7004), 60, smallOverlay - 60},
	}
	for _, p := range ports {
		before, _ := mss(t, l.a, l.remote, p.toRemote)
		require.Greater(t, before, p.maxSeg, "%s: without the rules the ends agree on their own links' 1500", p.name)
	}
	mustApply(t, l.net, l.rules())
	for _, p := range ports {
		t.Run(p.name, func(t *testing.T) {
			dialled, accepted := mss(t, l.a, l.remote, p.toRemote)
			assert.LessOrEqual(t, dialled, p.maxSeg, "workload to remote: the workload's end")
			assert.LessOrEqual(t, accepted, p.maxSeg, "workload to remote: the remote end (the SYN was clamped)")
			dialled, _ = mss(t, l.remote, l.a, p.toA)
			assert.LessOrEqual(t, dialled, p.maxSeg, "remote to workload: the remote end (the SYN-ACK was clamped)")
		})
	}
}
