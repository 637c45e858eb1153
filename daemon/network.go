package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/firewall"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/netconf"
	"github.com/znet/znet/overlay"
	"github.com/znet/znet/peers"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
)

// nsName returns the name of network's namespace on this node.
func (d *Daemon) nsName(network string) string { return namespaces.Name(d.nodeID, network) }

// device returns the overlay device of an applied network.
func (d *Daemon) device(network string, mtu int) overlay.Device {
	return overlay.Device{
		IfName:  overlay.IfName(d.nodeID, network),
		NetNS:   namespaces.Path(d.nsName(network)),
		MTU:     mtu,
		Network: network,
	}
}

// realize makes the kernel objects of network n (applied with spec s) match
// it: namespace, bridge, WireGuard device with its key, port and peers,
// routes and firewall. Workloads' veths are left alone except that they
// follow the network's MTU and the firewall admits exactly wls. It is idempotent and changes only what
// differs, so healthy tunnels never blink.
//
// Peers it adds (a data plane restarted, a node recovering, a rollback)
// start their links at once: each was up before, and the far side, whose
// session just died, is not starting it too.
func (d *Daemon) realize(ctx context.Context, n *store.Network, s *spec.Spec, wls []*store.Workload, acc []*store.AccessPeer) error {
	return d.realizeDesired(ctx, n, s, wls, acc, nil, arrivals{})
}

// realizeDesired is realize with the desired peers of s and acc when the
// caller has them (nil: computed here), and the members an apply adds,
// whose links start staggered and whose first DNS sync may be held back
// (see newMembers).
func (d *Daemon) realizeDesired(ctx context.Context, n *store.Network, s *spec.Spec, wls []*store.Workload, acc []*store.AccessPeer, desired []peers.Peer, arr arrivals) error {
	subnets, err := d.subnetsOf(s)
	if err != nil {
		return err
	}
	if desired == nil {
		if desired, err = peers.Desired(ctx, s, d.nodeID, d.resolve, accessPeers(acc)...); err != nil {
			return err
		}
	}
	name := d.nsName(n.Name)
	if err := d.markOwned(name); err != nil {
		return err
	}
	ns, err := d.host.Open(name, true)
	if err != nil {
		return err
	}
	defer func() { _ = ns.Close() }()
	if err := d.prepareOf(ns, n.Name); err != nil {
		return err
	}
	gw4 := netip.PrefixFrom(subnets.Gateway4, subnets.V4.Bits())
	gw6 := netip.PrefixFrom(subnets.Gateway6, subnets.V6.Bits())
	mtu := d.overlayMTU(s, desired)
	bridge := netconf.Link{Name: bridgeName, Bridge: true, MTU: mtu, MAC: bridgeMAC(n.Name), Addrs: []netip.Prefix{gw4, gw6}}
	if _, err := ns.SetLink(bridge); err != nil {
		return err
	}
	// Before the device: a resolver-only process left from the kernel
	// backend must be gone before a data plane takes its socket.
	if err := d.ensureResolver(ctx, n.Name); err != nil {
		return err
	}
	dev := d.device(n.Name, mtu)
	dev.ListenPort = n.ListenPort // bound at start, before the data plane drops its privileges
	pid, err := d.backend.Ensure(ctx, dev)
	if err != nil {
		return fmt.Errorf("wireguard device: %w", err)
	}
	d.sup.watch(n.Name, pid)
	if err := d.configureDeviceOf(ctx, ns, pid, dev, n, desired, arr.wait); err != nil {
		return err
	}
	wg, err := ns.SetLink(netconf.Link{Name: dev.IfName, MTU: mtu, Addrs: linkAddress(s, d.nodeID)})
	if err != nil {
		return err
	}
	d.followMTU(ns, n.Name, wls, mtu)
	if err := d.syncRoutesOf(ns, n.Name, dev.IfName, wg, peers.Routes(desired)); err != nil {
		return err
	}
	if err := ns.ProxyNeigh(bridgeName, proxyAddrs(acc)); err != nil {
		return err
	}
	eg, err := d.syncEgress(ns, n, s)
	if err != nil {
		return err
	}
	rules := d.rules(dev, wls, acc)
	rules.Egress = eg
	if err := d.applyFirewallOf(ns, n.Name, rules); err != nil {
		return err
	}
	d.syncWorkloadRoutes(s, wls)
	d.pushDNSHolding(ctx, n, s, wls, arr.ids)
	return nil
}

// arrivals are the members an apply adds (newMembers). Realizing a
// network without an apply (a data plane restarted, a node recovering, a
// rollback) has none: every member was there before.
type arrivals struct {
	// wait is peers.Waiting for them: their links start staggered
	// (peers.Stagger).
	wait map[wgtypes.Key]bool
	// ids are their ids: the resolver may hold back its first sync to
	// them (dnsresolver.Config.Hold).
	ids []string
}

// newMembers returns the members of s that were not in the last good spec
// before (all of them for a first apply): those are the links that both
// sides configure at about the same time, as a deploy does, and whose
// start peers.Stagger orders, and whose first DNS syncs the resolvers
// spread when they are many. A member that was there already keeps the
// link and the records it has; if its peer is added again (a data plane
// rebuilt), its link was up before.
func (d *Daemon) newMembers(before, s *spec.Spec) arrivals {
	arr := arrivals{wait: peers.Waiting(s, d.nodeID)}
	if before == nil {
		before = &spec.Spec{}
	}
	had := make(map[string]bool, len(before.Nodes))
	for _, m := range before.Nodes {
		had[m.ID] = true
		// Keys are decoded only when there is something to drop, without
		// allocating: a thousand wgtypes.ParseKey were ~0.15 ms an apply.
		if len(arr.wait) == 0 {
			continue
		}
		if key, err := peers.ParseKey(m.PublicKey); err == nil {
			delete(arr.wait, key)
		}
	}
	for _, m := range s.Nodes {
		if m.ID != d.nodeID && !had[m.ID] {
			arr.ids = append(arr.ids, m.ID)
		}
	}
	return arr
}

// removePorts deletes the workloads' ports (veths and taps) in network's
// namespace that keep says to: deleting the bridge end of a veth takes the
// end in the workload's namespace with it. A namespace that cannot be
// opened has none.
func (d *Daemon) removePorts(network string, keep func(netconf.LinkInfo) bool) error {
	ns, err := d.host.Open(d.nsName(network), false)
	if err != nil {
		return nil
	}
	defer func() { _ = ns.Close() }()
	links, err := ns.Links()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		if isWorkloadPort(l) && keep(l) {
			errs = append(errs, ns.DeleteLink(l.Name))
		}
	}
	return errors.Join(errs...)
}

// configureDevice sets the key and port if they differ and applies the
// peer difference; a device that already matches is not touched at all.
// cur is what the device holds; nil reads it from the device.
func (d *Daemon) configureDevice(ctx context.Context, dev overlay.Device, n *store.Network, desired []peers.Peer, wait map[wgtypes.Key]bool, cur *wgtypes.Device) error {
	key, err := wgtypes.ParseKey(n.PrivateKey)
	if err != nil {
		return fmt.Errorf("stored key of %s: %w", n.Name, err)
	}
	if cur == nil {
		if cur, err = d.backend.Show(ctx, dev); err != nil {
			return fmt.Errorf("reading %s: %w", dev.IfName, err)
		}
	}
	if cur.ListenPort != n.ListenPort && d.backend.Kind() == "userspace" {
		if cur, err = d.restartOnPort(ctx, dev, n); err != nil {
			return err
		}
	}
	cfg := peers.Diff(desired, cur.Peers)
	if cur.PrivateKey != key {
		cfg.PrivateKey = &key
	}
	if cur.ListenPort != n.ListenPort {
		cfg.ListenPort = &n.ListenPort
	}
	return d.sendConfig(ctx, dev, cfg, wait)
}

// sendConfig applies cfg to the device, unless it changes nothing, and
// raises the keepalives of the peers it adds later (peers.Stagger).
func (d *Daemon) sendConfig(ctx context.Context, dev overlay.Device, cfg wgtypes.Config, wait map[wgtypes.Key]bool) error {
	if cfg.PrivateKey == nil && cfg.ListenPort == nil && len(cfg.Peers) == 0 {
		return nil
	}
	soon, later := peers.Stagger(&cfg, wait)
	if err := d.backend.Configure(ctx, dev, cfg); err != nil {
		return fmt.Errorf("configuring %s: %w", dev.IfName, err)
	}
	if len(soon) > 0 {
		d.later.after(peers.StartDelay, func() { d.raiseKeepalives(dev, soon) })
	}
	if len(later) > 0 {
		d.later.after(peers.StaggerDelay, func() { d.raiseKeepalives(dev, later) })
	}
	return nil
}

// restartOnPort replaces a userspace data plane by one that binds n's port
// at start (and has the supervisor follow it): a running one gave up the privileges it would need to bind a new
// port in the underlay (see dataplane's privileges.go). The new one starts
// empty, so the caller configures key and peers from scratch; the DNS
// records follow with realize's push.
func (d *Daemon) restartOnPort(ctx context.Context, dev overlay.Device, n *store.Network) (*wgtypes.Device, error) {
	port := n.ListenPort
	d.log.Info("restarting data plane on a new port", "network", n.Name, "ifname", dev.IfName, "port", port)
	dev.ListenPort = port
	if err := d.backend.Delete(ctx, dev); err != nil {
		return nil, fmt.Errorf("restarting %s on port %d: %w", dev.IfName, port, err)
	}
	pid, err := d.backend.Ensure(ctx, dev)
	if err != nil {
		return nil, fmt.Errorf("restarting %s on port %d: %w", dev.IfName, port, err)
	}
	d.sup.watch(n.Name, pid)
	cur, err := d.backend.Show(ctx, dev)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dev.IfName, err)
	}
	return cur, nil
}

// linkAddress returns this node's link address (zos's 100.64.<o2>.<o3>)
// as a /32 for its WireGuard device, or none: a /32, so that the kernel adds
// no route of its own that the peers' routes would fight with.
func linkAddress(s *spec.Spec, self string) []netip.Prefix {
	if n, ok := s.Node(self); ok && n.LinkAddress.IsValid() {
		return []netip.Prefix{netip.PrefixFrom(n.LinkAddress, 32)}
	}
	return nil
}

// accessPeers turns access peers into the WireGuard peers they need: each
// may send from its two addresses only.
func accessPeers(acc []*store.AccessPeer) []peers.Peer {
	out := make([]peers.Peer, 0, len(acc))
	for _, a := range acc {
		key, err := wgtypes.ParseKey(a.PublicKey)
		if err != nil {
			continue // checked when added
		}
		out = append(out, peers.Peer{
			Name:       a.Name,
			PublicKey:  key,
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(a.IPv4, 32), netip.PrefixFrom(a.IPv6, 128)},
		})
	}
	return out
}

// rules returns the firewall of a network with workloads wls and access
// peers acc on this node.
func (d *Daemon) rules(dev overlay.Device, wls []*store.Workload, acc []*store.AccessPeer) firewall.Rules {
	r := firewall.Rules{Bridge: bridgeName, Overlay: dev.IfName}
	for _, w := range wls {
		// MAC "" (state from before pinning): not pinned.
		r.Ports = append(r.Ports, firewall.Port{IfName: w.HostIf, IPv4: w.IPv4, IPv6: w.IPv6, MAC: w.MAC})
	}
	for _, a := range acc {
		for _, addr := range []netip.Addr{a.IPv4, a.IPv6} {
			if addr.IsValid() {
				r.AccessPeers = append(r.AccessPeers, addr)
			}
		}
	}
	return r
}

// teardown removes every kernel object of network on this node: the data
// plane, the namespace (and with it the bridge, the veths and, through them,
// the workloads' ends) and the resolv.conf files written for workloads.
func (d *Daemon) teardown(ctx context.Context, network string, wls []*store.Workload) error {
	var errs []error
	d.sup.stop(network) // a data plane stopped on purpose is not restarted
	dev := d.device(network, 0)
	if err := d.backend.Delete(ctx, dev); err != nil {
		errs = append(errs, fmt.Errorf("removing device: %w", err))
	}
	errs = append(errs, d.removeResolver(ctx, network))
	d.forgetDNS(network)
	for _, w := range wls {
		removeResolvConf(w)
	}
	// The way out first: its veth is in the namespace too, and its rules
	// and flows are in the underlay, which the namespace's deletion leaves.
	errs = append(errs, d.dropEgress(network))
	// Every veth and tap here is a workload's port (a VM holding a tap's
	// queue would keep the namespace alive otherwise). Deleting one end removes both
	// at once; left to the namespace's deletion, the ends in the workloads'
	// namespaces would linger until the kernel's asynchronous cleanup gets
	// to them, after delete has returned.
	errs = append(errs, d.removePorts(network, func(netconf.LinkInfo) bool { return true }))
	name := d.nsName(network)
	err := d.host.Delete(ctx, name)
	if err == nil || errors.Is(err, netconf.ErrLingering) {
		if uerr := d.unmarkOwned(name); uerr != nil {
			errs = append(errs, uerr)
		}
	}
	errs = append(errs, err)
	return errors.Join(errs...)
}
