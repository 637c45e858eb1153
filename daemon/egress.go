package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/api"
	"github.com/znet/znet/firewall"
	"github.com/znet/znet/ipam"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/netconf"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
)

// egressIfName is the egress veth's end in a network's namespace; the name
// only has to be unique there.
const egressIfName = "egress"

// egressNextHop is the next hop of the default route in a network's
// namespace. No interface has it: a permanent neighbour entry maps it to
// the underlay end's MAC, so nothing is asked of the underlay (no address,
// no proxy ARP) and no address of the node's can collide with it.
var egressNextHop = netip.MustParseAddr("169.254.0.1")

// egressLinkName names the egress veth's end in the underlay, unique on the
// machine like the WireGuard device's name: "ze" and ten hex digits of
// SHA-256 of "<node>/<network>".
func egressLinkName(nodeID, network string) string {
	sum := sha256.Sum256([]byte(nodeID + "/" + network))
	return "ze" + hex.EncodeToString(sum[:])[:10]
}

// transferAddr is the address a network's flows have between its namespace
// and the underlay: 169.254.<port/256>.<port%256>, from the network's
// WireGuard listen port, which no other network on the node holds, so two
// networks never share one and nothing needs to be stored. Link-local, so
// it is never routed beyond the node. Ports whose address RFC 3927 reserves
// (169.254.0.x, 169.254.255.x) or that is the cloud metadata address are
// refused.
func transferAddr(port int) (netip.Addr, error) {
	a := netip.AddrFrom4([4]byte{169, 254, byte(port >> 8), byte(port)})
	if port < 256 || port >= 65280 || port > 65535 || a == netip.MustParseAddr("169.254.169.254") {
		return netip.Addr{}, api.Invalid("egress", "the network's listen port %d gives no usable transfer address (%s); move it with reserve-port", port, a)
	}
	return a, nil
}

// withUnderlay runs fn with handles to the node's underlay namespace:
// Config.Underlay, or the one znetd runs in. That is read from the calling
// thread, not /proc/self (the main thread): a thread in another namespace is
// locked to the namespaces.Do call that moved it, so the caller's never is,
// while the main thread may be that one for a moment.
func (d *Daemon) withUnderlay(fn func(under netns.NsHandle, uh *netlink.Handle) error) error {
	ns := d.underlay
	if ns <= 0 {
		var err error
		if ns, err = namespaces.Open("/proc/thread-self/ns/net"); err != nil {
			return err
		}
		defer func() { _ = ns.Close() }()
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in the underlay: %w", err)
	}
	defer h.Close()
	return fn(ns, h)
}

// syncEgress makes network n's way out match spec s: with egress, the veth,
// its addresses, neighbours and routes on both sides and the underlay's
// table; without, none of it (and the flows that used it are cut). It
// returns what the namespace's firewall must add (nil without egress).
// Without egress and with nothing left from before it touches nothing in
// the underlay.
func (d *Daemon) syncEgress(ns netns.NsHandle, h *netlink.Handle, n *store.Network, s *spec.Spec) (*firewall.Egress, error) {
	if !s.Egress {
		return nil, d.removeEgress(h, n.Name, n.ListenPort, false)
	}
	src, err := transferAddr(n.ListenPort)
	if err != nil {
		return nil, err
	}
	var eg *firewall.Egress
	err = d.withUnderlay(func(under netns.NsHandle, uh *netlink.Handle) error {
		eg, err = d.plumbEgress(ns, h, under, uh, n.Name, src)
		return err
	})
	return eg, err
}

// plumbEgress is syncEgress for a network with egress, with handles to
// both namespaces.
func (d *Daemon) plumbEgress(ns netns.NsHandle, h *netlink.Handle, under netns.NsHandle, uh *netlink.Handle, network string, src netip.Addr) (*firewall.Egress, error) {
	outer := egressLinkName(d.nodeID, network)
	inner, out, err := ensureEgressVeth(h, uh, under, outer)
	if err != nil {
		return nil, err
	}
	src6, up6, err := egress6Source(uh, src)
	if err != nil {
		return nil, err
	}
	if err := plumbEgressInside(ns, h, inner, out, src); err != nil {
		return nil, err
	}
	if err := plumbEgressInside6(ns, h, inner, out, src6); err != nil {
		return nil, err
	}
	if err := plumbEgressUnderlay(under, uh, out, inner, src); err != nil {
		return nil, err
	}
	if err := plumbEgressUnderlay6(under, uh, out, inner, src6, up6); err != nil {
		return nil, err
	}
	links, err := d.egressLinks(network, &firewall.EgressLink{IfName: outer, Source: src, Source6: src6}, src6.IsValid())
	if err != nil {
		return nil, err
	}
	if err := firewall.ApplyUplink(under, links); err != nil {
		return nil, err
	}
	return d.egressFilter(uh, network, src, src6)
}

// egressFilter is what the firewall of network's namespace adds for its
// way out from transfer addresses src and src6 (unset: no IPv6; uh: a
// handle in the underlay).
func (d *Daemon) egressFilter(uh *netlink.Handle, network string, src, src6 netip.Addr) (*firewall.Egress, error) {
	blocked, err := d.egressBlocked(uh, network)
	if err != nil {
		return nil, err
	}
	return &firewall.Egress{IfName: egressIfName, Source: src, Source6: src6, Blocked: blocked}, nil
}

// egressOf is egressFilter for an applied network n (nil without egress),
// for rebuilding its firewall when workloads come and go.
func (d *Daemon) egressOf(n *store.Network) (*firewall.Egress, error) {
	if n.Spec == nil || !n.Spec.Egress {
		return nil, nil
	}
	src, err := transferAddr(n.ListenPort)
	if err != nil {
		return nil, err
	}
	var eg *firewall.Egress
	err = d.withUnderlay(func(_ netns.NsHandle, uh *netlink.Handle) error {
		src6, _, err := egress6Source(uh, src)
		if err != nil {
			return err
		}
		eg, err = d.egressFilter(uh, n.Name, src, src6)
		return err
	})
	return eg, err
}

// ensureEgressVeth returns both ends of the egress veth, creating it
// (inside end in the network's namespace, outer end in the underlay) when
// either is missing.
func ensureEgressVeth(h, uh *netlink.Handle, under netns.NsHandle, outer string) (inner, out netlink.Link, err error) {
	inner, errIn := h.LinkByName(egressIfName)
	out, errOut := uh.LinkByName(outer)
	if errIn == nil && errOut == nil {
		return inner, out, nil
	}
	// Half a veth cannot be: a leftover end is someone else's or stale.
	if errIn == nil {
		_ = h.LinkDel(inner)
	}
	if errOut == nil {
		_ = uh.LinkDel(out)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: egressIfName}, PeerName: outer, PeerNamespace: netlink.NsFd(under)}
	if err := h.LinkAdd(veth); err != nil {
		return nil, nil, fmt.Errorf("adding egress veth %s: %w", outer, err)
	}
	if inner, err = h.LinkByName(egressIfName); err != nil {
		return nil, nil, fmt.Errorf("finding egress veth: %w", err)
	}
	if out, err = uh.LinkByName(outer); err != nil {
		return nil, nil, fmt.Errorf("finding egress veth %s in the underlay: %w", outer, err)
	}
	return inner, out, nil
}

// plumbEgressInside gives the namespace's end the transfer address and the
// namespace an IPv4 default route through it (IPv6: plumbEgressInside6).
func plumbEgressInside(ns netns.NsHandle, h *netlink.Handle, inner, out netlink.Link, src netip.Addr) error {
	if err := syncAddrs(h, inner, []netip.Prefix{netip.PrefixFrom(src, 32)}); err != nil {
		return fmt.Errorf("egress address: %w", err)
	}
	if err := h.LinkSetUp(inner); err != nil {
		return fmt.Errorf("egress veth up: %w", err)
	}
	return egressDefaultRoute(h, inner, out, egressNextHop)
}

// egressDefaultRoute routes everything of hop's family through the egress
// veth's inner end to hop, which a permanent neighbour maps to the outer
// end's MAC.
func egressDefaultRoute(h *netlink.Handle, inner, out netlink.Link, hop netip.Addr) error {
	idx := inner.Attrs().Index
	if err := permanentNeigh(h, idx, hop, out.Attrs().HardwareAddr); err != nil {
		return err
	}
	def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if hop.Is6() {
		def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	r := &netlink.Route{
		LinkIndex: idx, Dst: ipNet(def), Gw: hop.AsSlice(),
		Flags: int(netlink.FLAG_ONLINK), Protocol: unix.RTPROT_STATIC,
	}
	if err := h.RouteReplace(r); err != nil {
		return fmt.Errorf("egress default route %s: %w", def, err)
	}
	return nil
}

// plumbEgressUnderlay routes the transfer address to the underlay's end
// and lets the underlay forward between it and its uplinks. It adds no
// address to the underlay.
func plumbEgressUnderlay(under netns.NsHandle, uh *netlink.Handle, out, inner netlink.Link, src netip.Addr) error {
	values := map[string]string{"net/ipv4/conf/" + out.Attrs().Name + "/forwarding": "1"}
	uplinks, err := defaultRouteLinks(uh, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	if len(uplinks) == 0 {
		return api.Invalid("egress", "the node has no IPv4 default route to give the network a way out")
	}
	// Replies come in on the uplink; Linux forwards only what arrives on a
	// device that forwards.
	for _, name := range uplinks {
		values["net/ipv4/conf/"+name+"/forwarding"] = "1"
	}
	if err := writeSysctls(under, values); err != nil {
		return err
	}
	if err := uh.LinkSetUp(out); err != nil {
		return fmt.Errorf("egress veth %s up: %w", out.Attrs().Name, err)
	}
	idx := out.Attrs().Index
	if err := permanentNeigh(uh, idx, src, inner.Attrs().HardwareAddr); err != nil {
		return err
	}
	if err := addRoute(uh, idx, netip.PrefixFrom(src, 32)); err != nil {
		return fmt.Errorf("underlay: %w", err)
	}
	return nil
}

// defaultRouteLinks names the devices of the underlay's default routes of
// family (netlink.FAMILY_V4 or FAMILY_V6).
func defaultRouteLinks(uh *netlink.Handle, family int) ([]string, error) {
	routes, err := retryDump(func() ([]netlink.Route, error) { return uh.RouteList(nil, family) })
	if err != nil {
		return nil, fmt.Errorf("listing underlay routes: %w", err)
	}
	var out []string
	for _, r := range routes {
		if r.Dst != nil && prefixOf(r.Dst).Bits() != 0 {
			continue
		}
		if l, err := uh.LinkByIndex(r.LinkIndex); err == nil {
			out = append(out, l.Attrs().Name)
		}
	}
	return out, nil
}

// permanentNeigh maps ip to mac on link idx for good.
func permanentNeigh(h *netlink.Handle, idx int, ip netip.Addr, mac net.HardwareAddr) error {
	family := netlink.FAMILY_V4
	if ip.Is6() {
		family = netlink.FAMILY_V6
	}
	n := &netlink.Neigh{LinkIndex: idx, Family: family, State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: mac}
	if err := h.NeighSet(n); err != nil {
		return fmt.Errorf("neighbour %s: %w", ip, err)
	}
	return nil
}

// writeSysctls sets /proc/sys keys in ns.
func writeSysctls(ns netns.NsHandle, values map[string]string) error {
	sysctls := make([]netconf.Sysctl, 0, len(values))
	for k, v := range values {
		sysctls = append(sysctls, netconf.Sysctl{Key: k, Value: v})
	}
	return netconf.WriteSysctls(ns, sysctls)
}

// egressBlocked lists what the namespace's way out must never reach beyond
// firewall.ClosedRanges: every address of the node's underlay and the
// subnet around it, and the ranges of the node's networks.
func (d *Daemon) egressBlocked(uh *netlink.Handle, network string) ([]netip.Prefix, error) {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return uh.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("listing underlay addresses: %w", err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()), netip.PrefixFrom(ip, ones).Masked())
	}
	err = d.store.View(func(tx *store.Tx) error {
		nets, err := tx.Networks()
		for _, n := range nets {
			if n.Spec != nil {
				out = append(out, n.Spec.IPRange, n.Spec.IPv6Range)
			}
		}
		return err
	})
	return out, err
}

// egressLinks lists the underlay ends of every network with egress on this
// node, from the state, with network's own replaced by self (nil: none);
// v6 says the node has IPv6 egress, so the others carry IPv6 too.
func (d *Daemon) egressLinks(network string, self *firewall.EgressLink, v6 bool) ([]firewall.EgressLink, error) {
	var out []firewall.EgressLink
	if self != nil {
		out = append(out, *self)
	}
	err := d.store.View(func(tx *store.Tx) error {
		nets, err := tx.Networks()
		for _, n := range nets {
			if n.Name == network || n.Spec == nil || !n.Spec.Egress {
				continue
			}
			if src, err := transferAddr(n.ListenPort); err == nil {
				l := firewall.EgressLink{IfName: egressLinkName(d.nodeID, n.Name), Source: src}
				if v6 {
					l.Source6 = transferAddr6(src)
				}
				out = append(out, l)
			}
		}
		return err
	})
	return out, err
}

// removeEgress takes network n's way out away, if it has one: the veth
// (which takes the routes and neighbours with it), its rules in the
// underlay's table (the table itself with the last one), and every tracked
// flow of the network, so an open connection stops at once instead of
// lingering on a stale translation.
// had says the network is known to have had a way out, so the underlay's
// table is rebuilt even when the veth is gone already.
func (d *Daemon) removeEgress(h *netlink.Handle, network string, port int, had bool) error {
	return d.withUnderlay(func(under netns.NsHandle, uh *netlink.Handle) error {
		return d.unplumbEgress(h, under, uh, network, port, had)
	})
}

// unplumbEgress is removeEgress with handles to the underlay.
func (d *Daemon) unplumbEgress(h *netlink.Handle, under netns.NsHandle, uh *netlink.Handle, network string, port int, had bool) error {
	outer := egressLinkName(d.nodeID, network)
	var errs []error
	if h != nil {
		if l, err := h.LinkByName(egressIfName); err == nil {
			had = true
			if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("removing egress veth: %w", err))
			}
		}
	}
	if l, err := uh.LinkByName(outer); err == nil {
		had = true
		if err := uh.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("removing egress veth %s: %w", outer, err))
		}
	}
	if !had {
		return nil
	}
	up6, err := egress6Uplinks(uh)
	if err == nil {
		var links []firewall.EgressLink
		if links, err = d.egressLinks(network, nil, len(up6) > 0); err == nil {
			err = firewall.ApplyUplink(under, links)
		}
	}
	errs = append(errs, err)
	if src, err := transferAddr(port); err == nil {
		for _, a := range []netip.Addr{src, transferAddr6(src)} {
			errs = append(errs, flushConntrack(uh, a))
			if h != nil {
				errs = append(errs, flushConntrack(h, a))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d.log.Info("egress removed", "network", network)
	return nil
}

// dropEgress is removeEgress for a network being torn down, whose
// namespace may be gone already (and the veth with it).
func (d *Daemon) dropEgress(network string) error {
	if _, ok := d.host.(netconf.Kernel); !ok {
		return nil // only the kernel's namespaces have a way out (syncEgressIn)
	}
	port, had := 0, false
	_ = d.store.View(func(tx *store.Tx) error {
		if n, err := tx.Network(network); err == nil {
			port, had = n.ListenPort, n.Spec != nil && n.Spec.Egress
		}
		return nil
	})
	ns, err := d.host.Open(d.nsName(network), false)
	if err != nil {
		return d.removeEgress(nil, network, port, had)
	}
	defer func() { _ = ns.Close() }()
	var h *netlink.Handle
	if raw, ok := ns.(netconf.Raw); ok {
		h = raw.Handle()
	}
	return d.removeEgress(h, network, port, had)
}

// flushConntrack deletes the tracked flows that left from (underlay) or
// were translated to (network namespace) the transfer address src.
func flushConntrack(h *netlink.Handle, src netip.Addr) error {
	family := netlink.InetFamily(unix.AF_INET)
	if src.Is6() {
		family = unix.AF_INET6
	}
	from, to := &netlink.ConntrackFilter{}, &netlink.ConntrackFilter{}
	if err := from.AddIP(netlink.ConntrackOrigSrcIP, src.AsSlice()); err != nil {
		return err
	}
	if err := to.AddIP(netlink.ConntrackReplyDstIP, src.AsSlice()); err != nil {
		return err
	}
	if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, family, from, to); err != nil {
		return fmt.Errorf("flushing the egress flows of %s: %w", src, err)
	}
	return nil
}

// egressStatus reports whether network n has a way out and the address its
// flows leave the node from: the source of the underlay's route to the
// internet.
func (d *Daemon) egressStatus(n *store.Network) (addr netip.Addr, problem string) {
	if n.Spec == nil || !n.Spec.Egress {
		return netip.Addr{}, ""
	}
	var routes []netlink.Route
	err := d.withUnderlay(func(_ netns.NsHandle, uh *netlink.Handle) error {
		var err error
		routes, err = uh.RouteGet(net.IPv4(192, 0, 2, 1)) // any public destination: the default route's
		return err
	})
	if err != nil || len(routes) == 0 {
		return netip.Addr{}, "egress: the node has no IPv4 route to the internet"
	}
	a, _ := netip.AddrFromSlice(routes[0].Src)
	return a.Unmap(), ""
}

// syncWorkloadRoutes gives every workload a default route via the gateway
// when the network has a way out, and takes it away when not. It is a
// convenience, not a barrier: the namespace's firewall decides. Only a
// namespace that is still the one attached is touched (see wlnetns.go);
// failures are logged, and status shows a workload whose namespace went.
func (d *Daemon) syncWorkloadRoutes(s *spec.Spec, wls []*store.Workload) {
	subnets, err := d.subnetsOf(s)
	if err != nil {
		return
	}
	on6 := s.Egress && d.egress6Ready()
	for _, w := range wls {
		if isTap(w) {
			continue // its namespace is the network's; the guest routes itself (egressRoutes)
		}
		wl, state := d.openWorkloadNS(w)
		if state != api.StateAttached {
			continue
		}
		err := errors.Join(syncDefaultRoute(wl, w.IfName, subnets.Gateway4, s.Egress),
			syncDefaultRoute(wl, w.IfName, subnets.Gateway6, on6))
		_ = wl.Close()
		if err != nil {
			d.log.Warn("workload default route", "network", s.Name, "workload", w.Name, "err", err)
		}
	}
}

// syncDefaultRoute adds (on) or removes (off) the default route of gw's
// family via gw on ifname; a default route the workload made itself
// elsewhere is left alone.
func syncDefaultRoute(wl netconf.Namespace, ifname string, gw netip.Addr, on bool) error {
	def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if gw.Is6() {
		def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	return wl.RouteVia(ifname, def, gw, on)
}

// egressRoutes are the default routes a VM's guest config gets with egress
// (a namespace workload gets them from syncDefaultRoute): IPv4, and IPv6
// with v6 (the node has IPv6 egress). A running guest picks up a change of
// egress only with a new guest config.
func egressRoutes(subnets ipam.Subnets, v6 bool) []api.Route {
	out := []api.Route{{To: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Via: subnets.Gateway4}}
	if v6 {
		out = append(out, api.Route{To: netip.PrefixFrom(netip.IPv6Unspecified(), 0), Via: subnets.Gateway6})
	}
	return out
}
