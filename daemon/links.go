package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/store"
)

// bridgeName is the workloads' L2 segment inside every network namespace.
const bridgeName = "znbr"

// retryDump repeats a netlink dump that the kernel interrupted (the
// answer may be inconsistent then).
func retryDump[T any](fn func() ([]T, error)) ([]T, error) {
	var (
		out []T
		err error
	)
	for range 5 {
		out, err = fn()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return out, err
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked()
}

// setSysctls switches on forwarding inside ns and keeps IPv6 from
// configuring itself from router advertisements.
func setSysctls(ns netns.NsHandle) error {
	values := map[string]string{
		"net/ipv4/ip_forward":                "1",
		"net/ipv6/conf/all/forwarding":       "1",
		"net/ipv6/conf/default/accept_ra":    "0",
		"net/ipv6/conf/default/autoconf":     "0",
		"net/ipv6/conf/default/accept_dad":   "0",
		"net/ipv4/conf/all/rp_filter":        "1",
		"net/ipv4/conf/default/rp_filter":    "1",
		"net/ipv4/conf/all/accept_redirects": "0",
		"net/ipv6/conf/all/accept_redirects": "0",
		// Access peers' addresses sit inside the workloads' on-link subnet
		// but live behind the WireGuard device: the gateway answers ARP and
		// neighbour solicitations for them (proxy ARP follows routes; NDP
		// needs an entry per address, see syncProxyNeigh).
		"net/ipv4/conf/default/proxy_arp": "1",
		"net/ipv6/conf/default/proxy_ndp": "1",
		"net/ipv6/conf/all/proxy_ndp":     "1",
	}
	if err := writeSysctls(ns, values); err != nil {
		return err
	}
	return namespaces.Do(ns, bridgeOffIPHooks)
}

// bridgeSysctls make the bridge hand the frames it forwards to the IP (and
// ARP) firewall hooks; they exist only while br_netfilter is loaded.
var bridgeSysctls = []string{
	"net/bridge/bridge-nf-call-iptables",
	"net/bridge/bridge-nf-call-ip6tables",
	"net/bridge/bridge-nf-call-arptables",
}

// bridgeOffIPHooks, run in a network's namespace, stops its bridge from
// calling the IP hooks for frames it forwards between workloads: the
// bridge table checks those frames already, and the inet table accepts
// them, so the detour through br_netfilter (on by default wherever the
// module is loaded, e.g. by Docker) cost every bridged packet without
// deciding anything. Routed packets reach the IP hooks as before.
func bridgeOffIPHooks() error {
	for _, k := range bridgeSysctls {
		err := os.WriteFile(filepath.Join("/proc/sys", k), []byte("0"), 0o644)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("setting %s: %w", k, err)
		}
	}
	return nil
}

// ensureBridge makes the workloads' bridge with the gateway addresses.
func ensureBridge(h *netlink.Handle, gw4, gw6 netip.Prefix, mtu int) (netlink.Link, error) {
	link, err := h.LinkByName(bridgeName)
	if err != nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName, MTU: mtu}}
		if err := h.LinkAdd(br); err != nil {
			return nil, fmt.Errorf("adding bridge: %w", err)
		}
		if link, err = h.LinkByName(bridgeName); err != nil {
			return nil, fmt.Errorf("finding bridge: %w", err)
		}
	}
	if link.Attrs().MTU != mtu {
		if err := h.LinkSetMTU(link, mtu); err != nil {
			return nil, fmt.Errorf("setting bridge mtu: %w", err)
		}
	}
	if err := syncAddrs(h, link, []netip.Prefix{gw4, gw6}); err != nil {
		return nil, fmt.Errorf("bridge addresses: %w", err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("bridge up: %w", err)
	}
	return link, nil
}

// syncAddrs makes link's global addresses exactly want (link-local ones
// are left alone). IPv6 addresses skip duplicate detection: the subnet is
// ours alone, and DAD would delay the first packets by seconds.
func syncAddrs(h *netlink.Handle, link netlink.Link, want []netip.Prefix) error {
	have, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("listing addresses: %w", err)
	}
	wanted := map[netip.Prefix]bool{}
	for _, p := range want {
		wanted[p] = true
	}
	for _, a := range have {
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		p := netip.PrefixFrom(ip.Unmap(), ones)
		if wanted[p] {
			delete(wanted, p)
			continue
		}
		if ip.IsLinkLocalUnicast() {
			continue
		}
		if err := h.AddrDel(link, &a); err != nil {
			return fmt.Errorf("removing %s: %w", p, err)
		}
	}
	for _, p := range want {
		if !wanted[p] {
			continue
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("adding %s: %w", p, err)
		}
	}
	return nil
}

// syncRoutes makes the routes through link exactly want (main table,
// scope link).
func syncRoutes(h *netlink.Handle, link netlink.Link, want []netip.Prefix) error {
	filter := &netlink.Route{LinkIndex: link.Attrs().Index, Table: unix.RT_TABLE_MAIN}
	have, err := retryDump(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return fmt.Errorf("listing routes: %w", err)
	}
	wanted := map[netip.Prefix]bool{}
	for _, p := range want {
		wanted[p] = true
	}
	for _, r := range have {
		p := prefixOf(r.Dst)
		if !p.IsValid() || r.Protocol == unix.RTPROT_KERNEL || p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast() {
			continue
		}
		if wanted[p] {
			delete(wanted, p)
			continue
		}
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("removing route %s: %w", p, err)
		}
	}
	for _, p := range want {
		if !wanted[p] {
			continue
		}
		if err := addRoute(h, link.Attrs().Index, p); err != nil {
			return err
		}
	}
	return nil
}

// addRoute routes p through link idx (replacing a route there was).
func addRoute(h *netlink.Handle, idx int, p netip.Prefix) error {
	r := &netlink.Route{LinkIndex: idx, Dst: ipNet(p), Scope: netlink.SCOPE_LINK, Protocol: unix.RTPROT_STATIC}
	if err := h.RouteReplace(r); err != nil {
		return fmt.Errorf("adding route %s: %w", p, err)
	}
	return nil
}

// syncProxyNeigh makes the bridge answer IPv6 neighbour solicitations for
// exactly the access peers' IPv6 addresses.
func syncProxyNeigh(h *netlink.Handle, acc []*store.AccessPeer) error {
	br, err := h.LinkByName(bridgeName)
	if err != nil {
		return fmt.Errorf("finding bridge: %w", err)
	}
	idx := br.Attrs().Index
	have, err := retryDump(func() ([]netlink.Neigh, error) { return h.NeighProxyList(idx, netlink.FAMILY_V6) })
	if err != nil {
		return fmt.Errorf("listing proxy neighbours: %w", err)
	}
	want := map[netip.Addr]bool{}
	for _, a := range acc {
		want[a.IPv6] = true
	}
	for _, n := range have {
		ip, _ := netip.AddrFromSlice(n.IP)
		if want[ip] {
			delete(want, ip)
			continue
		}
		if err := h.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("removing proxy neighbour %s: %w", ip, err)
		}
	}
	for ip := range want {
		n := &netlink.Neigh{LinkIndex: idx, Family: netlink.FAMILY_V6, Flags: netlink.NTF_PROXY, IP: ip.AsSlice()}
		if err := h.NeighSet(n); err != nil {
			return fmt.Errorf("adding proxy neighbour %s: %w", ip, err)
		}
	}
	return nil
}
