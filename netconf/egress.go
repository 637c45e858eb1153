package netconf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/firewall"
	"github.com/znet/znet/namespaces"
)

// The kernel's side of the networks' way out: the underlay, neighbours,
// routes through a next hop, sysctls and tracked flows.

// kernelUnderlay is the underlay namespace with a netlink handle in it.
type kernelUnderlay struct{ *kernelNS }

// Underlay implements Host. The namespace is read from the calling thread,
// not /proc/self (see SelfPath), unless UnderlayNS names it.
func (k Kernel) Underlay() (Underlay, error) {
	var (
		ns  netns.NsHandle
		err error
	)
	if k.UnderlayNS > 0 {
		// A handle of its own: the caller closes what it opened.
		fd, dupErr := unix.Dup(int(k.UnderlayNS))
		ns, err = netns.NsHandle(fd), dupErr
	} else {
		ns, err = namespaces.Open(SelfPath)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the underlay: %w", err)
	}
	h, err := nsHandle(ns)
	if err != nil {
		_ = ns.Close()
		return nil, fmt.Errorf("netlink in the underlay: %w", err)
	}
	return &kernelUnderlay{&kernelNS{ns: ns, h: h}}, nil
}

func (k *kernelNS) AddRoute(link string, dst netip.Prefix, hop netip.Addr) error {
	l, err := k.link(link)
	if err != nil {
		return err
	}
	if !hop.IsValid() {
		return AddRoute(k.h, l.Attrs().Index, dst)
	}
	r := &netlink.Route{
		LinkIndex: l.Attrs().Index, Dst: IPNet(dst), Gw: hop.AsSlice(),
		Flags: int(netlink.FLAG_ONLINK), Protocol: unix.RTPROT_STATIC,
	}
	if err := k.h.RouteReplace(r); err != nil {
		return fmt.Errorf("route %s via %s: %w", dst, hop, err)
	}
	return nil
}

func (k *kernelNS) Neigh(link string, ip netip.Addr, mac net.HardwareAddr) error {
	l, err := k.link(link)
	if err != nil {
		return err
	}
	family := netlink.FAMILY_V4
	if ip.Is6() {
		family = netlink.FAMILY_V6
	}
	n := &netlink.Neigh{LinkIndex: l.Attrs().Index, Family: family, State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: mac}
	if err := k.h.NeighSet(n); err != nil {
		return fmt.Errorf("neighbour %s: %w", ip, err)
	}
	return nil
}

func (k *kernelNS) Sysctls(sysctls []Sysctl) error { return WriteSysctls(k.ns, sysctls) }

func (k *kernelNS) Sysctl(key string) (string, error) {
	var value string
	err := namespaces.Do(k.ns, func() error {
		// /proc/sys/net shows the namespace of the thread that opens it.
		b, err := os.ReadFile(filepath.Join("/proc/sys", key))
		value = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", key, err)
	}
	return value, nil
}

func (k *kernelNS) FlushConntrack(addr netip.Addr) error {
	family := netlink.InetFamily(unix.AF_INET)
	if addr.Is6() {
		family = unix.AF_INET6
	}
	from, to := &netlink.ConntrackFilter{}, &netlink.ConntrackFilter{}
	if err := from.AddIP(netlink.ConntrackOrigSrcIP, addr.AsSlice()); err != nil {
		return err
	}
	if err := to.AddIP(netlink.ConntrackReplyDstIP, addr.AsSlice()); err != nil {
		return err
	}
	h, err := netlink.NewHandleAt(k.ns, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("netlink in the namespace: %w", err)
	}
	defer h.Close()
	if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, family, from, to); err != nil {
		return fmt.Errorf("flushing the flows of %s: %w", addr, err)
	}
	return nil
}

func (u *kernelUnderlay) DefaultRoutes(v6 bool) ([]string, error) {
	family := netlink.FAMILY_V4
	if v6 {
		family = netlink.FAMILY_V6
	}
	routes, err := RetryDump(func() ([]netlink.Route, error) { return u.h.RouteList(nil, family) })
	if err != nil {
		return nil, fmt.Errorf("listing underlay routes: %w", err)
	}
	var out []string
	for _, r := range routes {
		if r.Dst != nil && PrefixOf(r.Dst).Bits() != 0 {
			continue
		}
		if l, err := u.h.LinkByIndex(r.LinkIndex); err == nil {
			out = append(out, l.Attrs().Name)
		}
	}
	return out, nil
}

func (u *kernelUnderlay) Addrs() ([]Addr, error) {
	addrs, err := RetryDump(func() ([]netlink.Addr, error) { return u.h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("listing underlay addresses: %w", err)
	}
	out := make([]Addr, 0, len(addrs))
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		out = append(out, Addr{
			Prefix:   netip.PrefixFrom(ip.Unmap(), ones),
			Unusable: a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0,
		})
	}
	return out, nil
}

func (u *kernelUnderlay) RouteSource(dst netip.Addr) (netip.Addr, error) {
	routes, err := u.h.RouteGet(dst.AsSlice())
	if err != nil {
		return netip.Addr{}, err
	}
	if len(routes) == 0 {
		return netip.Addr{}, errors.New("no route")
	}
	a, _ := netip.AddrFromSlice(routes[0].Src)
	return a.Unmap(), nil
}

func (u *kernelUnderlay) InstallUplink(links []firewall.EgressLink) error {
	return firewall.ApplyUplink(u.ns, links)
}
