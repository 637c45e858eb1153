package netconf

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
	"github.com/znet/znet/peers"
)

// RetryDump repeats a netlink dump that the kernel interrupted (the
// answer may be inconsistent then).
func RetryDump[T any](fn func() ([]T, error)) ([]T, error) {
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

// IPNet converts p for netlink.
func IPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// PrefixOf converts n from netlink, canonical; nil gives the zero Prefix.
func PrefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked()
}

// WriteSysctls sets /proc/sys keys in ns, in order.
func WriteSysctls(ns netns.NsHandle, sysctls []Sysctl) error {
	return namespaces.Do(ns, func() error {
		for _, s := range sysctls {
			err := os.WriteFile(filepath.Join("/proc/sys", s.Key), []byte(s.Value), 0o644)
			if err != nil && (!s.Optional || !errors.Is(err, os.ErrNotExist)) {
				return fmt.Errorf("setting %s: %w", s.Key, err)
			}
		}
		return nil
	})
}

// SyncAddrs makes link's global addresses exactly want (link-local ones
// are left alone). IPv6 addresses skip duplicate detection: the subnet is
// ours alone, and DAD would delay the first packets by seconds.
func SyncAddrs(h *netlink.Handle, link netlink.Link, want []netip.Prefix) error {
	have, err := RetryDump(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_ALL) })
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
		addr := &netlink.Addr{IPNet: IPNet(p)}
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
	have, err := RetryDump(func() ([]netlink.Route, error) {
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
		p := PrefixOf(r.Dst)
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
		if err := AddRoute(h, link.Attrs().Index, p); err != nil {
			return err
		}
	}
	return nil
}

// changeRoutes turns the routes through link idx from have into want.
func changeRoutes(h *netlink.Handle, idx int, have, want []netip.Prefix) error {
	add, del := peers.RouteDiff(have, want)
	for _, p := range del {
		// The scope must be the route's own: IPv4 matches it on delete.
		r := &netlink.Route{LinkIndex: idx, Dst: IPNet(p), Scope: netlink.SCOPE_LINK, Table: unix.RT_TABLE_MAIN}
		if err := h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("removing route %s: %w", p, err)
		}
	}
	for _, p := range add {
		if err := AddRoute(h, idx, p); err != nil {
			return err
		}
	}
	return nil
}

// AddRoute routes p through link idx (replacing a route there was).
func AddRoute(h *netlink.Handle, idx int, p netip.Prefix) error {
	r := &netlink.Route{LinkIndex: idx, Dst: IPNet(p), Scope: netlink.SCOPE_LINK, Protocol: unix.RTPROT_STATIC}
	if err := h.RouteReplace(r); err != nil {
		return fmt.Errorf("adding route %s: %w", p, err)
	}
	return nil
}

// syncProxyNeigh makes link idx answer IPv6 neighbour solicitations for
// exactly want.
func syncProxyNeigh(h *netlink.Handle, idx int, want []netip.Addr) error {
	have, err := RetryDump(func() ([]netlink.Neigh, error) { return h.NeighProxyList(idx, netlink.FAMILY_V6) })
	if err != nil {
		return fmt.Errorf("listing proxy neighbours: %w", err)
	}
	wanted := map[netip.Addr]bool{}
	for _, a := range want {
		wanted[a] = true
	}
	for _, n := range have {
		ip, _ := netip.AddrFromSlice(n.IP)
		if wanted[ip] {
			delete(wanted, ip)
			continue
		}
		if err := h.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("removing proxy neighbour %s: %w", ip, err)
		}
	}
	for ip := range wanted {
		n := &netlink.Neigh{LinkIndex: idx, Family: netlink.FAMILY_V6, Flags: netlink.NTF_PROXY, IP: ip.AsSlice()}
		if err := h.NeighSet(n); err != nil {
			return fmt.Errorf("adding proxy neighbour %s: %w", ip, err)
		}
	}
	return nil
}
