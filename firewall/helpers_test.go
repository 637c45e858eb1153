package firewall

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
)

// mustApply applies r in n; it skips the test when the kernel lacks
// nftables or one of the families or expressions the rules use.
func mustApply(t *testing.T, n *testNS, r Rules) {
	t.Helper()
	err := Apply(n.ns, r)
	for _, errno := range []unix.Errno{unix.EOPNOTSUPP, unix.EAFNOSUPPORT, unix.EPROTONOSUPPORT} {
		if errors.Is(err, errno) {
			t.Skipf("kernel lacks nftables support for these rules: %v", err)
		}
	}
	require.NoError(t, err)
}

// testNS is a throwaway namespace with a handle and a netlink handle in it.
type testNS struct {
	name string
	ns   netns.NsHandle
	h    *netlink.Handle
}

// newNS creates namespace name with lo up; t.Cleanup closes the handles and
// deletes it, pass or fail.
func newNS(t *testing.T, name string) *testNS {
	t.Helper()
	require.NoError(t, namespaces.Create(name))
	n := &testNS{name: name, ns: netns.None()}
	t.Cleanup(func() {
		if n.h != nil {
			n.h.Close()
		}
		if n.ns.IsOpen() {
			_ = n.ns.Close()
		}
		if err := namespaces.Delete(name); err != nil {
			t.Errorf("deleting %s: %v", name, err)
		}
	})
	var err error
	n.ns, err = namespaces.Open(name)
	require.NoError(t, err)
	n.h, err = netlink.NewHandleAt(n.ns)
	require.NoError(t, err)
	lo, err := n.h.LinkByName("lo")
	require.NoError(t, err)
	require.NoError(t, n.h.LinkSetUp(lo))
	// No duplicate address detection: links made later are usable at once.
	n.sysctl(t, map[string]string{
		"net/ipv6/conf/all/accept_dad":     "0",
		"net/ipv6/conf/default/accept_dad": "0",
	})
	return n
}

// sysctl sets /proc/sys keys (path form, e.g. net/ipv4/ip_forward) in n.
func (n *testNS) sysctl(t *testing.T, kv map[string]string) {
	t.Helper()
	err := namespaces.Do(n.ns, func() error {
		for k, v := range kv {
			// /proc/sys/net shows the namespace of the thread that opens it.
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
}

// link returns n's link name.
func (n *testNS) link(t *testing.T, name string) netlink.Link {
	t.Helper()
	l, err := n.h.LinkByName(name)
	require.NoError(t, err)
	return l
}

// addAddrs adds addresses (CIDR) to n's link name, IPv6 without duplicate
// address detection so they are usable at once, and sets the link up.
func (n *testNS) addAddrs(t *testing.T, name string, cidrs ...string) {
	t.Helper()
	l := n.link(t, name)
	for _, c := range cidrs {
		a, err := netlink.ParseAddr(c)
		require.NoError(t, err)
		if a.IP.To4() == nil {
			a.Flags = unix.IFA_F_NODAD
		}
		require.NoError(t, n.h.AddrAdd(l, a), "adding %s to %s in %s", c, name, n.name)
	}
	require.NoError(t, n.h.LinkSetUp(l))
}

// addRoute routes dst (CIDR) via gw in n.
func (n *testNS) addRoute(t *testing.T, dst, gw string) {
	t.Helper()
	_, ipnet, err := net.ParseCIDR(dst)
	require.NoError(t, err)
	require.NoError(t, n.h.RouteAdd(&netlink.Route{Dst: ipnet, Gw: net.ParseIP(gw)}))
}

// veth makes a veth pair: name in n (on master if not empty, up) and
// peerName in peer.
func (n *testNS) veth(t *testing.T, name, master string, peer *testNS, peerName string) {
	t.Helper()
	attrs := netlink.LinkAttrs{Name: name}
	if master != "" {
		attrs.MasterIndex = n.link(t, master).Attrs().Index
	}
	v := &netlink.Veth{LinkAttrs: attrs, PeerName: peerName, PeerNamespace: netlink.NsFd(int(peer.ns))}
	require.NoError(t, n.h.LinkAdd(v))
	require.NoError(t, n.h.LinkSetUp(n.link(t, name)))
	require.NoError(t, peer.h.LinkSetUp(peer.link(t, peerName)))
}

// lab is the test topology: a network namespace with bridge br0 holding the
// gateway addresses, workloads a and b on ports veth-a and veth-b, a
// stranger x on port veth-x that the rules do not know, and a remote host
// behind wg0 (a veth standing in for the WireGuard device) owning
// 10.20.2.0/24 and fd00:20:2::/64. Workload a also has a second address,
// .99/::99, to spoof with.
type lab struct {
	net, a, b, x, remote *testNS
}

// Addresses of the lab.
var (
	gw4     = netip.MustParseAddr("10.20.1.1")
	gw6     = netip.MustParseAddr("fd00:20:1::1")
	a4      = netip.MustParseAddr("10.20.1.2")
	a6      = netip.MustParseAddr("fd00:20:1::2")
	b4      = netip.MustParseAddr("10.20.1.3")
	b6      = netip.MustParseAddr("fd00:20:1::3")
	x4      = netip.MustParseAddr("10.20.1.9")
	x6      = netip.MustParseAddr("fd00:20:1::9")
	spoof4  = netip.MustParseAddr("10.20.1.99")
	spoof6  = netip.MustParseAddr("fd00:20:1::99")
	remote4 = netip.MustParseAddr("10.20.2.2")
	remote6 = netip.MustParseAddr("fd00:20:2::2")
)

// newLab builds the lab in namespaces named zt-fw-<random>-*.
func newLab(t *testing.T) *lab {
	t.Helper()
	prefix := "zt-fw-" + testutil.RandomHex(t, 4) + "-"
	l := &lab{
		net: newNS(t, prefix+"net"), a: newNS(t, prefix+"a"), b: newNS(t, prefix+"b"),
		x: newNS(t, prefix+"x"), remote: newNS(t, prefix+"r"),
	}
	l.net.sysctl(t, map[string]string{
		"net/ipv4/ip_forward":          "1",
		"net/ipv6/conf/all/forwarding": "1",
	})
	require.NoError(t, l.net.h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}))
	l.net.addAddrs(t, "br0", "10.20.1.1/24", "fd00:20:1::1/64")

	workloads := []struct {
		ns     *testNS
		port   string
		v4, v6 netip.Addr
	}{{l.a, "veth-a", a4, a6}, {l.b, "veth-b", b4, b6}, {l.x, "veth-x", x4, x6}}
	for _, w := range workloads {
		l.net.veth(t, w.port, "br0", w.ns, "eth0")
		w.ns.addAddrs(t, "eth0", w.v4.String()+"/24", w.v6.String()+"/64")
		w.ns.addRoute(t, "10.20.2.0/24", gw4.String())
		w.ns.addRoute(t, "fd00:20:2::/64", gw6.String())
	}
	// The spoofing address: a secondary IPv4 address is never picked as a
	// source on its own, and a deprecated IPv6 one neither (RFC 6724 rule 3),
	// so a sends from them only when told to.
	l.a.addAddrs(t, "eth0", spoof4.String()+"/24")
	spoof, err := netlink.ParseAddr(spoof6.String() + "/64")
	require.NoError(t, err)
	spoof.Flags = unix.IFA_F_NODAD
	spoof.PreferedLft, spoof.ValidLft = 0, 3600
	require.NoError(t, l.a.h.AddrAdd(l.a.link(t, "eth0"), spoof))

	l.net.veth(t, "wg0", "", l.remote, "eth0")
	l.net.addAddrs(t, "wg0", "10.20.2.1/24", "fd00:20:2::1/64")
	l.remote.addAddrs(t, "eth0", remote4.String()+"/24", remote6.String()+"/64")
	l.remote.addRoute(t, "10.20.1.0/24", "10.20.2.1")
	l.remote.addRoute(t, "fd00:20:1::/64", "fd00:20:2::1")
	return l
}

// rules returns the lab's rules: a and b are known ports, x is not.
func (l *lab) rules() Rules {
	return Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{
		{IfName: "veth-a", IPv4: a4, IPv6: a6},
		{IfName: "veth-b", IPv4: b4, IPv6: b6},
	}}
}

// ping reports whether n gets an echo reply from dst, sent from src if src
// is valid.
func (n *testNS) ping(t *testing.T, src, dst netip.Addr) bool {
	t.Helper()
	args := []string{"netns", "exec", n.name, "ping", "-n", "-q", "-c", "1", "-W", "1"}
	if src.IsValid() {
		args = append(args, "-I", src.String())
	}
	out, err := exec.Command("ip", append(args, dst.String())...).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running ping: %v: %s", err, out)
	}
	return err == nil
}

// dialTimeout bounds every probe that expects no answer.
const dialTimeout = 700 * time.Millisecond

// tcpOpen reports whether a TCP connection from n to dst is accepted.
func (n *testNS) tcpOpen(t *testing.T, dst netip.AddrPort) bool {
	t.Helper()
	var ok bool
	err := namespaces.Do(n.ns, func() error {
		c, err := net.DialTimeout("tcp", dst.String(), dialTimeout)
		if err != nil {
			return nil
		}
		ok = true
		return c.Close()
	})
	require.NoError(t, err)
	return ok
}

// udpEcho reports whether a datagram from n (from src if valid) to dst
// comes back from an echo server.
func (n *testNS) udpEcho(t *testing.T, src netip.Addr, dst netip.AddrPort) bool {
	t.Helper()
	var ok bool
	err := namespaces.Do(n.ns, func() error {
		var laddr *net.UDPAddr
		if src.IsValid() {
			laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
		c, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(dst))
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		if _, err := c.Write([]byte("probe")); err != nil {
			return nil // e.g. no neighbour: not reachable
		}
		if err := c.SetReadDeadline(time.Now().Add(dialTimeout)); err != nil {
			return err
		}
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		ok = err == nil && string(buf[:n]) == "probe"
		return nil
	})
	require.NoError(t, err)
	return ok
}

// listenTCP listens on TCP port in n (all addresses, both families) until
// the test ends. Connections complete in the backlog; none is accepted.
func (n *testNS) listenTCP(t *testing.T, port int) {
	t.Helper()
	var ln net.Listener
	err := namespaces.Do(n.ns, func() error {
		var err error
		ln, err = net.ListenTCP("tcp", &net.TCPAddr{Port: port})
		return err
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
}

// udpEchoServer echoes datagrams on addr in n until the test ends. It is
// bound to one address, as a DNS server is, so its replies come from it.
func (n *testNS) udpEchoServer(t *testing.T, addr netip.AddrPort) {
	t.Helper()
	var pc *net.UDPConn
	err := namespaces.Do(n.ns, func() error {
		var err error
		pc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			k, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteToUDPAddrPort(buf[:k], from)
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		wg.Wait()
	})
}

// udpSink counts the datagrams that reach UDP port in n until the test
// ends, by source address.
type udpSink struct {
	mu   sync.Mutex
	from map[netip.Addr]int
}

// newUDPSink starts a udpSink on port in n.
func (n *testNS) newUDPSink(t *testing.T, port int) *udpSink {
	t.Helper()
	s := &udpSink{from: map[netip.Addr]int{}}
	var pc *net.UDPConn
	err := namespaces.Do(n.ns, func() error {
		var err error
		pc, err = net.ListenUDP("udp", &net.UDPAddr{Port: port})
		return err
	})
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.from[from.Addr().Unmap()]++
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		wg.Wait()
	})
	return s
}

// count returns how many datagrams came from src.
func (s *udpSink) count(src netip.Addr) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.from[src]
}

// sendUDP sends a few datagrams from src in n to dst, ignoring errors (a
// spoofed source may fail neighbour resolution).
func (n *testNS) sendUDP(t *testing.T, src netip.Addr, dst netip.AddrPort) {
	t.Helper()
	err := namespaces.Do(n.ns, func() error {
		c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(dst))
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		for range 3 {
			_, _ = c.Write([]byte("oneway"))
		}
		return nil
	})
	require.NoError(t, err)
}
