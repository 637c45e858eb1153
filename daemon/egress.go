package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"

	"github.com/znet/znet/api"
	"github.com/znet/znet/firewall"
	"github.com/znet/znet/ipam"
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

// withUnderlay runs fn with the node's underlay namespace open.
func (d *Daemon) withUnderlay(fn func(u netconf.Underlay) error) error {
	u, err := d.host.Underlay()
	if err != nil {
		return err
	}
	defer func() { _ = u.Close() }()
	return fn(u)
}

// syncEgress makes network n's way out match spec s through ns, its
// namespace: with egress, the veth, its addresses, neighbours and routes on
// both sides and the underlay's table; without, none of it (and the flows
// that used it are cut). It returns what the namespace's firewall must add
// (nil without egress). Without egress and with nothing left from before
// it touches nothing in the underlay.
func (d *Daemon) syncEgress(ns netconf.Namespace, n *store.Network, s *spec.Spec) (*firewall.Egress, error) {
	if !s.Egress {
		return nil, d.removeEgress(ns, n.Name, n.ListenPort, false)
	}
	src, err := transferAddr(n.ListenPort)
	if err != nil {
		return nil, err
	}
	var eg *firewall.Egress
	err = d.withUnderlay(func(u netconf.Underlay) error {
		eg, err = d.plumbEgress(ns, u, n.Name, src)
		return err
	})
	return eg, err
}

// plumbEgress is syncEgress for a network with egress, with the underlay
// open.
func (d *Daemon) plumbEgress(ns netconf.Namespace, u netconf.Underlay, network string, src netip.Addr) (*firewall.Egress, error) {
	outer := egressLinkName(d.nodeID, network)
	inner, out, err := ensureEgressVeth(ns, u, outer)
	if err != nil {
		return nil, err
	}
	src6, up6, err := egress6Source(u, src)
	if err != nil {
		return nil, err
	}
	if err := plumbEgressInside(ns, inner, out, src); err != nil {
		return nil, err
	}
	if err := plumbEgressInside6(ns, out, src6); err != nil {
		return nil, err
	}
	if err := plumbEgressUnderlay(u, out, inner, src); err != nil {
		return nil, err
	}
	if err := plumbEgressUnderlay6(u, out, inner, src6, up6); err != nil {
		return nil, err
	}
	links, err := d.egressLinks(network, &firewall.EgressLink{IfName: outer, Source: src, Source6: src6}, src6.IsValid())
	if err != nil {
		return nil, err
	}
	if err := u.InstallUplink(links); err != nil {
		return nil, err
	}
	return d.egressFilter(u, network, src, src6)
}

// egressFilter is what the firewall of network's namespace adds for its
// way out from transfer addresses src and src6 (unset: no IPv6).
func (d *Daemon) egressFilter(u netconf.Underlay, network string, src, src6 netip.Addr) (*firewall.Egress, error) {
	blocked, err := d.egressBlocked(u, network)
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
	err = d.withUnderlay(func(u netconf.Underlay) error {
		src6, _, err := egress6Source(u, src)
		if err != nil {
			return err
		}
		eg, err = d.egressFilter(u, n.Name, src, src6)
		return err
	})
	return eg, err
}

// ensureEgressVeth returns both ends of the egress veth, creating it
// (inside end in the network's namespace ns, outer end in the underlay)
// when either is missing.
func ensureEgressVeth(ns netconf.Namespace, u netconf.Underlay, outer string) (inner, out netconf.LinkInfo, err error) {
	inner, errIn := ns.Link(egressIfName)
	out, errOut := u.Link(outer)
	if errIn == nil && errOut == nil {
		return inner, out, nil
	}
	// Half a veth cannot be: a leftover end is someone else's or stale.
	if errIn == nil {
		_ = ns.DeleteLink(egressIfName)
	}
	if errOut == nil {
		_ = u.DeleteLink(outer)
	}
	if err := ns.AddPort(netconf.Port{Name: egressIfName, PeerName: outer}, u); err != nil {
		return inner, out, fmt.Errorf("adding egress veth %s: %w", outer, err)
	}
	if inner, err = ns.Link(egressIfName); err != nil {
		return inner, out, fmt.Errorf("finding egress veth: %w", err)
	}
	if out, err = u.Link(outer); err != nil {
		return inner, out, fmt.Errorf("finding egress veth %s in the underlay: %w", outer, err)
	}
	return inner, out, nil
}

// plumbEgressInside gives the namespace's end the transfer address and the
// namespace an IPv4 default route through it (IPv6: plumbEgressInside6).
func plumbEgressInside(ns netconf.Namespace, inner, out netconf.LinkInfo, src netip.Addr) error {
	if _, err := ns.SetLink(netconf.Link{Name: egressIfName, MTU: inner.MTU, Addrs: []netip.Prefix{netip.PrefixFrom(src, 32)}}); err != nil {
		return fmt.Errorf("egress veth: %w", err)
	}
	return egressDefaultRoute(ns, out, egressNextHop)
}

// egressDefaultRoute routes everything of hop's family through the egress
// veth's inner end to hop, which a permanent neighbour maps to the outer
// end's MAC.
func egressDefaultRoute(ns netconf.Namespace, out netconf.LinkInfo, hop netip.Addr) error {
	if err := ns.Neigh(egressIfName, hop, out.MAC); err != nil {
		return err
	}
	def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if hop.Is6() {
		def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	if err := ns.AddRoute(egressIfName, def, hop); err != nil {
		return fmt.Errorf("egress default route %s: %w", def, err)
	}
	return nil
}

// plumbEgressUnderlay routes the transfer address to the underlay's end
// and lets the underlay forward between it and its uplinks. It adds no
// address to the underlay.
func plumbEgressUnderlay(u netconf.Underlay, out, inner netconf.LinkInfo, src netip.Addr) error {
	sysctls := []netconf.Sysctl{{Key: "net/ipv4/conf/" + out.Name + "/forwarding", Value: "1"}}
	uplinks, err := u.DefaultRoutes(false)
	if err != nil {
		return err
	}
	if len(uplinks) == 0 {
		return api.Invalid("egress", "the node has no IPv4 default route to give the network a way out")
	}
	// Replies come in on the uplink; Linux forwards only what arrives on a
	// device that forwards.
	for _, name := range uplinks {
		sysctls = append(sysctls, netconf.Sysctl{Key: "net/ipv4/conf/" + name + "/forwarding", Value: "1"})
	}
	if err := u.Sysctls(sysctls); err != nil {
		return err
	}
	if _, err := u.SetLink(netconf.Link{Name: out.Name, MTU: out.MTU}); err != nil {
		return fmt.Errorf("egress veth %s: %w", out.Name, err)
	}
	if err := u.Neigh(out.Name, src, inner.MAC); err != nil {
		return err
	}
	if err := u.AddRoute(out.Name, netip.PrefixFrom(src, 32), netip.Addr{}); err != nil {
		return fmt.Errorf("underlay: %w", err)
	}
	return nil
}

// egressBlocked lists what the namespace's way out must never reach beyond
// firewall.ClosedRanges: every address of the node's underlay and the
// subnet around it, and the ranges of the node's networks.
func (d *Daemon) egressBlocked(u netconf.Underlay, network string) ([]netip.Prefix, error) {
	addrs, err := u.Addrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ip := a.Prefix.Addr()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()), a.Prefix.Masked())
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
// lingering on a stale translation. ns is the network's namespace, nil
// when it is gone.
// had says the network is known to have had a way out, so the underlay's
// table is rebuilt even when the veth is gone already.
func (d *Daemon) removeEgress(ns netconf.Namespace, network string, port int, had bool) error {
	return d.withUnderlay(func(u netconf.Underlay) error {
		return d.unplumbEgress(ns, u, network, port, had)
	})
}

// unplumbEgress is removeEgress with the underlay open.
func (d *Daemon) unplumbEgress(ns netconf.Namespace, u netconf.Underlay, network string, port int, had bool) error {
	outer := egressLinkName(d.nodeID, network)
	var errs []error
	if ns != nil {
		if _, err := ns.Link(egressIfName); err == nil {
			had = true
			if err := ns.DeleteLink(egressIfName); err != nil {
				errs = append(errs, fmt.Errorf("removing egress veth: %w", err))
			}
		}
	}
	if _, err := u.Link(outer); err == nil {
		had = true
		if err := u.DeleteLink(outer); err != nil {
			errs = append(errs, fmt.Errorf("removing egress veth %s: %w", outer, err))
		}
	}
	if !had {
		return nil
	}
	up6, err := egress6Uplinks(u)
	if err == nil {
		var links []firewall.EgressLink
		if links, err = d.egressLinks(network, nil, len(up6) > 0); err == nil {
			err = u.InstallUplink(links)
		}
	}
	errs = append(errs, err)
	if src, err := transferAddr(port); err == nil {
		for _, a := range []netip.Addr{src, transferAddr6(src)} {
			errs = append(errs, u.FlushConntrack(a))
			if ns != nil {
				errs = append(errs, ns.FlushConntrack(a))
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
	return d.removeEgress(ns, network, port, had)
}

// egressStatus reports whether network n has a way out and the address its
// flows leave the node from: the source of the underlay's route to the
// internet.
func (d *Daemon) egressStatus(n *store.Network) (addr netip.Addr, problem string) {
	if n.Spec == nil || !n.Spec.Egress {
		return netip.Addr{}, ""
	}
	err := d.withUnderlay(func(u netconf.Underlay) error {
		var err error
		addr, err = u.RouteSource(netip.AddrFrom4([4]byte{192, 0, 2, 1})) // any public destination: the default route's
		return err
	})
	if err != nil {
		return netip.Addr{}, "egress: the node has no IPv4 route to the internet"
	}
	return addr, ""
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
