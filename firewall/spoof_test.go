package firewall

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
)

// htons converts a 16-bit value to network byte order for socket calls.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sendFrame sends a raw Ethernet frame (header included) out of n's link
// ifname.
func (n *testNS) sendFrame(t *testing.T, ifname string, proto uint16, frame []byte) {
	t.Helper()
	index := n.link(t, ifname).Attrs().Index
	err := namespaces.Do(n.ns, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer func() { _ = unix.Close(fd) }()
		sa := &unix.SockaddrLinklayer{Ifindex: index, Protocol: htons(proto), Halen: 6}
		copy(sa.Addr[:], frame[:6])
		return unix.Sendto(fd, frame, 0, sa)
	})
	require.NoError(t, err)
}

// arpRequest returns an Ethernet frame asking, from sender (MAC and IP),
// who has target IP, sent to dst.
func arpRequest(dst, senderMAC net.HardwareAddr, senderIP, targetIP netip.Addr) []byte {
	f := append([]byte{}, dst...)
	f = append(f, senderMAC...)
	f = append(f, 0x08, 0x06)                // EtherType ARP
	f = append(f, 0, 1, 0x08, 0, 6, 4, 0, 1) // Ethernet, IPv4, lengths, request
	f = append(f, senderMAC...)
	f = append(f, senderIP.AsSlice()...)
	f = append(f, make([]byte, 6)...)
	return append(f, targetIP.AsSlice()...)
}

// sendNA sends, from n's address src to dst, an unsolicited neighbour
// advertisement with the override flag saying that target is at mac.
func (n *testNS) sendNA(t *testing.T, src, dst, target netip.Addr, mac net.HardwareAddr) {
	t.Helper()
	msg := []byte{icmpv6NeighborAdvert, 0, 0, 0, 0x20, 0, 0, 0} // checksum by the kernel; O flag
	msg = append(msg, target.AsSlice()...)
	msg = append(msg, 2, 1) // option: target link-layer address, 8 bytes
	msg = append(msg, mac...)
	err := namespaces.Do(n.ns, func() error {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
		if err != nil {
			return err
		}
		defer func() { _ = unix.Close(fd) }()
		// Neighbour discovery is only believed with hop limit 255.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 255); err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: src.As16()}); err != nil {
			return err
		}
		return unix.Sendto(fd, msg, 0, &unix.SockaddrInet6{Addr: dst.As16()})
	})
	require.NoError(t, err)
}

// neighbour returns the MAC address n's link ifname has for ip, or nil.
func (n *testNS) neighbour(t *testing.T, ifname string, ip netip.Addr) net.HardwareAddr {
	t.Helper()
	family := netlink.FAMILY_V6
	if ip.Is4() {
		family = netlink.FAMILY_V4
	}
	neighs, err := n.h.NeighList(n.link(t, ifname).Attrs().Index, family)
	require.NoError(t, err)
	for _, nb := range neighs {
		if a, ok := netip.AddrFromSlice(nb.IP); ok && a.Unmap() == ip {
			return nb.HardwareAddr
		}
	}
	return nil
}

// TestNeighbourSpoofing checks that a workload cannot make the gateway send
// another workload's traffic to it: an ARP sender IP or a neighbour
// advertisement target that is not the workload's own is dropped.
func TestNeighbourSpoofing(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	l := newLab(t)
	aMAC := l.a.link(t, "eth0").Attrs().HardwareAddr
	bMAC := l.b.link(t, "eth0").Attrs().HardwareAddr
	brMAC := l.net.link(t, "br0").Attrs().HardwareAddr

	attacks := []struct {
		name   string
		victim netip.Addr
		spoof  func(t *testing.T)
	}{
		{"arp request with b's address as sender", b4, func(t *testing.T) {
			l.a.sendFrame(t, "eth0", unix.ETH_P_ARP, arpRequest(brMAC, aMAC, b4, gw4))
		}},
		{"neighbour advertisement for b's address", b6, func(t *testing.T) {
			require.True(t, l.a.ping(t, netip.Addr{}, gw6), "a resolves the gateway")
			l.a.sendNA(t, a6, gw6, b6, aMAC)
		}},
	}
	phases := []struct {
		name  string
		setup func(t *testing.T)
		want  net.HardwareAddr // the gateway's entry for b after the attack
	}{
		{"without rules", func(*testing.T) {}, aMAC},
		{"with rules", func(t *testing.T) { mustApply(t, l.net, l.rules()) }, bMAC},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			ph.setup(t)
			for _, at := range attacks {
				t.Run(at.name, func(t *testing.T) {
					// Start from a true entry: the gateway pings b.
					_ = l.net.h.NeighDel(&netlink.Neigh{
						LinkIndex: l.net.link(t, "br0").Attrs().Index,
						IP:        at.victim.AsSlice(),
					})
					require.True(t, l.net.ping(t, netip.Addr{}, at.victim))
					require.Equal(t, bMAC, l.net.neighbour(t, "br0", at.victim))

					at.spoof(t)
					time.Sleep(200 * time.Millisecond)
					assert.Equal(t, ph.want, l.net.neighbour(t, "br0", at.victim))
				})
			}
		})
	}
}
