package daemon

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/api"
	"github.com/znet/znet/netconf"
	"github.com/znet/znet/overlay"
	"github.com/znet/znet/peers"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
)

// WireGuard's cost on the underlay, per packet: the outer IP header (20
// bytes for IPv4, 40 for IPv6), UDP (8), the data message header (16) and
// the Poly1305 tag (16).
const (
	wgOverhead4 = 20 + 8 + 16 + 16
	wgOverhead6 = 40 + 8 + 16 + 16
)

// underlayPath is what the underlay carries towards one peer: the MTU of
// the route there and whether it is IPv6.
type underlayPath struct {
	mtu  int
	ipv6 bool
}

// derivedMTU returns the overlay MTU that fits every path: the smallest
// path MTU less WireGuard's overhead for that path's family, never below
// spec.MinMTU (IPv6 needs 1280 on every link; a smaller underlay must
// fragment) nor above spec.MaxMTU. Without paths it is spec.DefaultMTU.
func derivedMTU(paths []underlayPath) int {
	if len(paths) == 0 {
		return spec.DefaultMTU
	}
	mtu := spec.MaxMTU
	for _, p := range paths {
		over := wgOverhead4
		if p.ipv6 {
			over = wgOverhead6
		}
		mtu = min(mtu, p.mtu-over)
	}
	return max(mtu, spec.MinMTU)
}

// overlayMTU returns the MTU network spec s gets on this node: the spec's
// own, or one derived from the underlay routes towards the endpoints of
// desired (the default route's, or the interfaces', when no peer has an
// endpoint). It depends only on the spec and the underlay's routes, so
// every realize of the same spec on the same underlay gives the same MTU.
func (d *Daemon) overlayMTU(s *spec.Spec, desired []peers.Peer) int {
	if s.MTU != 0 {
		return s.MTU
	}
	paths, err := d.underlayPaths(desired)
	if err != nil {
		d.log.Warn("reading the underlay's MTU; using the default", "network", s.Name, "mtu", spec.DefaultMTU, "err", err)
		return spec.DefaultMTU
	}
	return derivedMTU(paths)
}

// underlayPaths looks up the route MTU towards every distinct endpoint of
// desired in the underlay, or the underlay's default when there is none.
func (d *Daemon) underlayPaths(desired []peers.Peer) ([]underlayPath, error) {
	h, err := d.underlayHandle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	seen := map[netip.Addr]bool{}
	links := linkMTUs{}
	var paths []underlayPath
	for _, p := range desired {
		addr := p.Endpoint.Addr().Unmap()
		if !p.Endpoint.IsValid() || seen[addr] {
			continue
		}
		seen[addr] = true
		mtu, err := routeMTU(h, addr, links)
		if err != nil {
			return nil, fmt.Errorf("route to %s (peer %s): %w", addr, p.Name, err)
		}
		paths = append(paths, underlayPath{mtu: mtu, ipv6: addr.Is6()})
	}
	if len(paths) > 0 {
		return paths, nil
	}
	return defaultPaths(h)
}

// underlayHandle returns a netlink handle in the underlay namespace.
func (d *Daemon) underlayHandle() (*netlink.Handle, error) {
	// The daemon runs in the underlay: route requests only (a socket per
	// family cost 44 us more at every apply), and a request of another
	// family would go out in this same namespace anyway.
	if d.underlay <= 0 {
		return netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	// Every family: the netlink package sends a request of a family a
	// handle lacks from the calling thread's namespace, znetd's own, not
	// the underlay (see netconf's nsHandle).
	h, err := netlink.NewHandleAt(d.underlay)
	if err != nil {
		return nil, fmt.Errorf("netlink in the underlay: %w", err)
	}
	return h, nil
}

// routeMTU returns the MTU of the route to dst: the route's own MTU (a
// route metric, or a path MTU the kernel learned) or its device's.
func routeMTU(h *netlink.Handle, dst netip.Addr, links linkMTUs) (int, error) {
	routes, err := h.RouteGet(dst.AsSlice())
	if err != nil {
		return 0, err
	}
	if len(routes) == 0 {
		return 0, unix.ENETUNREACH
	}
	return mtuOf(h, routes[0], links)
}

// linkMTUs remembers devices' MTUs by index during one derivation: a
// network of a thousand members has a thousand routes over one or two
// devices.
type linkMTUs map[int]int

// mtuOf returns r's MTU, or its device's when the route sets none.
func mtuOf(h *netlink.Handle, r netlink.Route, links linkMTUs) (int, error) {
	if r.MTU > 0 {
		return r.MTU, nil
	}
	if mtu, ok := links[r.LinkIndex]; ok {
		return mtu, nil
	}
	link, err := h.LinkByIndex(r.LinkIndex)
	if err != nil {
		return 0, fmt.Errorf("device of the route: %w", err)
	}
	links[r.LinkIndex] = link.Attrs().MTU
	return link.Attrs().MTU, nil
}

// defaultPaths returns the underlay's default routes (IPv4 and IPv6) as
// paths; without any, the smallest MTU of the up interfaces that have a
// global address, counted as IPv6 (the larger overhead) since the peers'
// family is unknown. None of those either: no paths.
func defaultPaths(h *netlink.Handle) ([]underlayPath, error) {
	var paths []underlayPath
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := retryDump(func() ([]netlink.Route, error) {
			return h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		})
		if err != nil {
			return nil, fmt.Errorf("listing routes: %w", err)
		}
		for _, r := range routes {
			if ones, _ := maskOf(r); ones != 0 {
				continue
			}
			mtu, err := mtuOf(h, r, linkMTUs{})
			if err != nil {
				return nil, err
			}
			paths = append(paths, underlayPath{mtu: mtu, ipv6: family == netlink.FAMILY_V6})
		}
	}
	if len(paths) > 0 {
		return paths, nil
	}
	return interfacePaths(h)
}

// maskOf returns the prefix length of r's destination (0 for a default
// route, whichever way the library shows it).
func maskOf(r netlink.Route) (int, int) {
	if r.Dst == nil {
		return 0, 0
	}
	return r.Dst.Mask.Size()
}

// interfacePaths returns, as one IPv6 path, the smallest MTU of the up,
// non-loopback interfaces with a global unicast address.
func interfacePaths(h *netlink.Handle) ([]underlayPath, error) {
	links, err := retryDump(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	smallest := 0
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&unix.IFF_UP == 0 || a.Flags&unix.IFF_LOOPBACK != 0 || !hasGlobalAddr(h, l) {
			continue
		}
		if smallest == 0 || a.MTU < smallest {
			smallest = a.MTU
		}
	}
	if smallest == 0 {
		return nil, nil
	}
	return []underlayPath{{mtu: smallest, ipv6: true}}, nil
}

func hasGlobalAddr(h *netlink.Handle, l netlink.Link) bool {
	addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a.IP.IsGlobalUnicast() {
			return true
		}
	}
	return false
}

// followMTU gives every workload's veth pair the overlay MTU: the end in
// the workload's namespace first, then the bridge end, so that a pair
// whose bridge end has the MTU is done and a crash in between is finished
// by the next realize. ns is the network's namespace. A workload whose
// veth or namespace is gone is skipped (repairWorkloads re-plumbs it with
// the bridge's MTU); other failures are logged, not returned: a workload
// with a stale MTU still talks (TCP is clamped), and failing the network
// for it would roll back every other one.
func (d *Daemon) followMTU(ns netconf.Namespace, network string, wls []*store.Workload, mtu int) {
	if len(wls) == 0 {
		return
	}
	links, err := ns.Links()
	if err != nil {
		d.log.Warn("listing workload ports", "network", network, "err", err)
		return
	}
	byName := map[string]netconf.LinkInfo{}
	for _, l := range links {
		byName[l.Name] = l
	}
	for _, w := range wls {
		port, ok := byName[w.HostIf]
		if ok && port.Kind == "tuntap" && isTap(w) {
			// The tap follows the network like a veth; the guest keeps
			// the MTU it was configured with until it is configured again.
			if port.MTU != mtu {
				if err := ns.SetMTU(port.Name, mtu); err != nil {
					d.log.Warn("changing a tap's mtu", "network", network, "workload", w.Name, "mtu", mtu, "err", err)
				}
			}
			continue
		}
		if !ok || port.Kind != "veth" || port.MTU == mtu {
			continue
		}
		// Only the namespace checked at attach: a path that names
		// another one now would have us change a foreign link.
		wl, state := d.openWorkloadNS(w)
		if state != api.StateAttached {
			d.log.Warn("not changing a workload's mtu", "network", network, "workload", w.Name, "netns", w.NetNS, "state", state)
			continue
		}
		err := setPeerMTU(port, w, wl, mtu)
		_ = wl.Close()
		if err == nil {
			err = ns.SetMTU(port.Name, mtu)
		}
		if err != nil {
			d.log.Warn("changing a workload's mtu", "network", network, "workload", w.Name, "mtu", mtu, "err", err)
			continue
		}
		d.log.Info("workload mtu changed", "network", network, "workload", w.Name, "mtu", mtu)
	}
}

// setPeerMTU sets the MTU of host's peer, w's end in its namespace wl (the
// one checked at attach), found by the index the kernel reports as host's
// peer (the workload may have renamed it), else by name. A link found by
// index must name host back (vethPeer): the workload may have moved its
// end elsewhere and given the index to a link of its own.
func setPeerMTU(host netconf.LinkInfo, w *store.Workload, wl netconf.Namespace, mtu int) error {
	var (
		peer netconf.LinkInfo
		err  error
	)
	if host.Peer > 0 {
		var ok bool
		if peer, ok = vethPeer(wl, host); !ok {
			err = netconf.ErrNoLink
		}
	} else {
		peer, err = wl.Link(w.IfName)
	}
	if err != nil {
		return fmt.Errorf("peer of %s in %s: %w", host.Name, w.NetNS, err)
	}
	if peer.MTU == mtu {
		return nil
	}
	return wl.SetMTU(peer.Name, mtu)
}

// linkMTU returns the MTU of the bridge in network's namespace: the MTU
// the network has on this node (realize sets it on the bridge, the
// WireGuard device and every workload's veth).
func (d *Daemon) linkMTU(network string) (int, error) {
	return d.nsLinkMTU(network, bridgeName)
}

// nsLinkMTU returns the MTU of link in network's namespace.
func (d *Daemon) nsLinkMTU(network, link string) (int, error) {
	ns, err := d.host.Open(d.nsName(network), false)
	if err != nil {
		return 0, err
	}
	defer func() { _ = ns.Close() }()
	l, err := ns.Link(link)
	if err != nil {
		return 0, err
	}
	return l.MTU, nil
}

// tooBigRecent is how long after the last packet refused as too big
// status still calls it a problem: the count only grows, and once the MTU
// is fixed an old count is history, not a problem.
const tooBigRecent = 5 * time.Minute

// mtuStatus fills in st's MTU (the device's) and the packets dev's data
// plane could not send because the underlay refused them as too big, and
// returns a problem to report when the last was recent, else "".
func (d *Daemon) mtuStatus(st *api.NetworkStatus, dev overlay.Device, now time.Time) string {
	if mtu, err := d.nsLinkMTU(st.Name, dev.IfName); err == nil {
		st.MTU = mtu
	}
	drops, err := d.backend.SendDrops(dev)
	if err != nil {
		return fmt.Sprintf("reading the data plane's drops: %v", err)
	}
	st.TooBigDrops, st.LastTooBigDrop = drops.TooBig, drops.LastTooBig
	if drops.TooBig == 0 || now.Sub(drops.LastTooBig) > tooBigRecent {
		return ""
	}
	return fmt.Sprintf("underlay refused %d packets as too big (EMSGSIZE), the last %s ago: the overlay MTU %d is above what the route to a peer carries; "+
		"leave mtu out of the spec (each node derives it from its underlay) or lower it", drops.TooBig, now.Sub(drops.LastTooBig).Round(time.Second), st.MTU)
}
