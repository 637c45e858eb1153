package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/linkname"
	"github.com/znet/znet/ipam"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/netconf"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
)

// hostIfName is the bridge-side veth name of a workload: unique inside the
// network's namespace and short enough for IFNAMSIZ.
func hostIfName(workload string) string {
	sum := sha256.Sum256([]byte(workload))
	return "vw" + hex.EncodeToString(sum[:])[:10]
}

// Attach implements api.Service.
func (d *Daemon) Attach(ctx context.Context, network string, req api.AttachRequest) (api.Attachment, error) {
	if err := api.CheckName("name", req.Name); err != nil {
		return api.Attachment{}, err
	}
	var (
		wlNS netconf.Namespace
		id   namespaces.Identity
	)
	if req.Tap {
		if err := checkTapRequest(req); err != nil {
			return api.Attachment{}, err
		}
	} else {
		if req.MAC != "" || req.Queues != 0 {
			return api.Attachment{}, api.Invalid("mac", "--mac and --queues are for tap workloads (--tap)")
		}
		if req.IfName != "" && !validIfName(req.IfName) {
			return api.Attachment{}, api.Invalid("ifname", "%q is not a valid interface name (1-15 characters, no '/', ':' or spaces)", req.IfName)
		}
		if req.NetNS == "" {
			return api.Attachment{}, api.Invalid("netns", "is required (a path such as /run/netns/NAME or /proc/PID/ns/net)")
		}
		// Opened once: the namespace checked is the namespace plumbed.
		var err error
		if wlNS, id, err = d.host.OpenPath(req.NetNS); err != nil {
			return api.Attachment{}, api.Invalid("netns", "%v", err)
		}
		defer func() { _ = wlNS.Close() }()
	}
	var att api.Attachment
	err := d.withNetwork(ctx, network, func(ctx context.Context, n *store.Network, wls []*store.Workload) error {
		var err error
		att, err = d.attachLocked(ctx, n, wls, req, wlNS, id)
		return err
	})
	return att, err
}

// attachLocked is Attach into network n with workloads wls; wlNS and id
// are the workload's namespace as checked (nil for a tap).
func (d *Daemon) attachLocked(ctx context.Context, n *store.Network, wls []*store.Workload, req api.AttachRequest, wlNS netconf.Namespace, id namespaces.Identity) (api.Attachment, error) {
	network := n.Name
	if n.Spec == nil {
		return api.Attachment{}, api.Conflict("network", "network %s is reserved but not applied yet", network)
	}
	wls, old, err := d.takeStale(wls, req.Name, network)
	if err != nil {
		return api.Attachment{}, err
	}
	subnets, err := d.subnetsOf(n.Spec)
	if err != nil {
		return api.Attachment{}, err
	}
	if old != nil {
		// Attaching again: the old record's address is the workload's
		// own, and the old veth (if its namespace still lives somewhere)
		// is cut off by plumb, which removes the leftover port.
		n.Addrs.Release(old.IPv4)
		if !req.IPv4.IsValid() {
			req.IPv4 = old.IPv4
		}
	}
	w, err := d.allocate(n, subnets, req)
	if err != nil {
		return api.Attachment{}, err
	}
	if !req.Tap {
		if err := d.refuseOwnNamespace(req.NetNS, id); err != nil {
			return api.Attachment{}, err
		}
		w.NetNSID = id
	}
	if err := d.shapeWorkload(n, w, wls, req); err != nil {
		return api.Attachment{}, err
	}
	if err := d.plumbPort(n, subnets, w, wlNS, req.IfName == ""); err != nil {
		return api.Attachment{}, fmt.Errorf("attaching %s: %w", req.Name, err)
	}
	all := append(append([]*store.Workload{}, wls...), w)
	err = d.commit(ctx, change{
		doing:  "attaching " + req.Name,
		kernel: func() error { return d.applyFirewall(n, all) },
		saving: "saving " + req.Name,
		save: func(tx *store.Tx) error {
			if err := tx.PutWorkload(w); err != nil {
				return err
			}
			return tx.PutNetwork(n)
		},
		undo: func(context.Context) {
			d.unplumb(n, w)
			_ = d.applyFirewall(n, wls)
		},
	})
	if err != nil {
		return api.Attachment{}, err
	}
	if old != nil && old.ResolvConf != w.ResolvConf {
		removeResolvConf(old)
	}
	d.pushDNS(ctx, n, n.Spec, all)
	d.log.Info("attached", "network", network, "workload", w.Name, "ipv4", w.IPv4, "netns", w.NetNS)
	return d.attachment(network, n.Spec, subnets, w), nil
}

// allocate takes an address for the workload from n's allocator (changed
// in memory only; the caller commits it with the workload).
func (d *Daemon) allocate(n *store.Network, subnets ipam.Subnets, req api.AttachRequest) (*store.Workload, error) {
	owner := "workload/" + req.Name
	addr := req.IPv4
	if addr.IsValid() {
		addr = addr.Unmap()
		if err := n.Addrs.Reserve(addr, owner); err != nil {
			if errors.Is(err, ipam.ErrTaken) {
				other, _ := n.Addrs.Owner(addr)
				return nil, api.Conflict("ipv4", "%s is taken by %s", addr, other)
			}
			return nil, api.Invalid("ipv4", "%v (this node's subnet is %s)", err, subnets.V4)
		}
	} else {
		var err error
		if addr, err = n.Addrs.Allocate(owner); err != nil {
			return nil, api.Conflict("ipv4", "no free address in %s: %v", subnets.V4, err)
		}
	}
	return &store.Workload{
		Network: n.Name,
		Name:    req.Name,
		NetNS:   req.NetNS,
		IfName:  req.IfName,
		HostIf:  hostIfName(req.Name),
		IPv4:    addr,
		IPv6:    subnets.Twin(addr),
	}, nil
}

// plumb makes the veth pair of w: one end on the network's bridge, the
// other in the workload's namespace wlNS (the handle that was checked, never
// w.NetNS opened again) with its addresses and routes. When
// pickName is set, w.IfName is chosen as the first free znetN. On error
// nothing is left behind.
func (d *Daemon) plumb(n *store.Network, subnets ipam.Subnets, w *store.Workload, wlNS netconf.Namespace, pickName bool) error {
	ns, err := d.host.Open(d.nsName(n.Name), false)
	if err != nil {
		return err
	}
	defer func() { _ = ns.Close() }()
	if pickName {
		if w.IfName, err = freeIfName(wlNS); err != nil {
			return err
		}
	} else if _, err := wlNS.Link(w.IfName); err == nil {
		return api.Conflict("ifname", "%s already exists in %s", w.IfName, w.NetNS)
	}
	br, err := ns.Link(bridgeName)
	if err != nil {
		return fmt.Errorf("finding bridge: %w", err)
	}
	// A leftover of an attach that crashed before it was saved.
	_ = ns.DeleteLink(w.HostIf)
	// The bridge has the MTU realize chose for the network on this node.
	// The workload's end gets the MAC its port is pinned to; a workload
	// that changes it cuts itself off.
	mac, _ := net.ParseMAC(w.MAC)
	port := netconf.Port{Name: w.HostIf, Master: bridgeName, MTU: br.MTU, PeerName: w.IfName, PeerMAC: mac}
	if err := ns.AddPort(port, wlNS); err != nil {
		return err
	}
	if err := d.configureWorkloadSide(wlNS, n.Spec, subnets, w, br.MTU); err != nil {
		d.unplumb(n, w)
		return err
	}
	if _, err := ns.SetLink(netconf.Link{Name: w.HostIf, MTU: br.MTU}); err != nil {
		d.unplumb(n, w)
		return fmt.Errorf("veth up: %w", err)
	}
	if w.ResolvConf, err = writeResolvConf(d.etcNetns, w, n.Name, d.nodeID, subnets.Gateway4); err != nil {
		d.unplumb(n, w)
		return err
	}
	return nil
}

// configureWorkloadSide gives the workload's end its addresses, MTU and a
// route for the network's ranges (and, on a network with link addresses,
// spec.LinkRange) via the gateway. A default route only when the network
// has a way out (egress).
func (d *Daemon) configureWorkloadSide(wl netconf.Namespace, s *spec.Spec, subnets ipam.Subnets, w *store.Workload, mtu int) error {
	want := []netip.Prefix{
		netip.PrefixFrom(w.IPv4, subnets.V4.Bits()),
		netip.PrefixFrom(w.IPv6, subnets.V6.Bits()),
	}
	if _, err := wl.SetLink(netconf.Link{Name: w.IfName, MTU: mtu, Addrs: want}); err != nil {
		return fmt.Errorf("in workload: %w", err)
	}
	type route struct {
		dst netip.Prefix
		gw  netip.Addr
	}
	routes := []route{{s.IPRange, subnets.Gateway4}, {s.IPv6Range, subnets.Gateway6}}
	if s.HasLinkAddresses() {
		// zos's users reach workloads from their link addresses.
		routes = append(routes, route{spec.LinkRange, subnets.Gateway4})
	}
	for _, r := range routes {
		if r.dst.Bits() == subnetBits(r.dst, subnets) {
			continue // the range is the subnet: on-link already
		}
		if err := wl.RouteVia(w.IfName, r.dst, r.gw, true); err != nil {
			return err
		}
	}
	if s.Egress {
		return errors.Join(syncDefaultRoute(wl, w.IfName, subnets.Gateway4, true),
			syncDefaultRoute(wl, w.IfName, subnets.Gateway6, d.egress6Ready()))
	}
	return nil
}

func subnetBits(p netip.Prefix, s ipam.Subnets) int {
	if p.Addr().Is4() {
		return s.V4.Bits()
	}
	return s.V6.Bits()
}

// unplumb removes w's veth pair (deleting one end removes both) and the
// resolv.conf written for it. Errors are ignored: the objects may be gone.
func (d *Daemon) unplumb(n *store.Network, w *store.Workload) {
	removeResolvConf(w)
	if ns, err := d.host.Open(d.nsName(n.Name), false); err == nil {
		_ = ns.DeleteLink(w.HostIf)
		_ = ns.Close()
	}
}

// applyFirewall rebuilds the firewall of network n for workloads wls (and
// its access peers, as stored).
func (d *Daemon) applyFirewall(n *store.Network, wls []*store.Workload) error {
	acc, err := d.access(n.Name)
	if err != nil {
		return err
	}
	ns, err := d.host.Open(d.nsName(n.Name), false)
	if err != nil {
		return err
	}
	defer func() { _ = ns.Close() }()
	rules := d.rules(d.device(n.Name, n.Spec.MTU), wls, acc)
	if rules.Egress, err = d.egressOf(n); err != nil {
		return err
	}
	// Through the record, so that a restart or the next apply does not
	// take this install for a change by hand and rebuild it again.
	return d.applyFirewallOf(ns, n.Name, rules)
}

// nsExists reports whether network's namespace exists on this node.
func (d *Daemon) nsExists(network string) bool {
	name := d.nsName(network)
	names, err := d.host.List(name)
	return err == nil && slices.Contains(names, name)
}

// Detach implements api.Service.
func (d *Daemon) Detach(ctx context.Context, network, name string) error {
	if err := api.CheckName("workload", name); err != nil {
		return err
	}
	return d.withNetwork(ctx, network, func(ctx context.Context, n *store.Network, wls []*store.Workload) error {
		return d.detachLocked(ctx, n, wls, name)
	})
}

// detachLocked is Detach of workload name from network n with workloads
// wls.
func (d *Daemon) detachLocked(ctx context.Context, n *store.Network, wls []*store.Workload, name string) error {
	network := n.Name
	var (
		w    *store.Workload
		rest []*store.Workload
	)
	for _, x := range wls {
		if x.Name == name {
			w = x
		} else {
			rest = append(rest, x)
		}
	}
	if w == nil {
		return api.NotFound("workload", "no workload %s in %s", name, network)
	}
	d.unplumb(n, w)
	// Without the network's namespace (before a re-apply or restart
	// rebuilds it) there is no firewall to update; the rebuild uses the
	// state, which no longer has the workload.
	if err := d.applyFirewall(n, rest); err != nil && d.nsExists(network) {
		return fmt.Errorf("detaching %s: %w", name, err)
	}
	n.Addrs.Release(w.IPv4)
	err := d.store.Update(func(tx *store.Tx) error {
		if err := tx.DeleteWorkload(network, name); err != nil {
			return err
		}
		return tx.PutNetwork(n)
	})
	if err != nil {
		return fmt.Errorf("saving detach of %s: %w", name, err)
	}
	if n.Spec != nil {
		d.pushDNS(ctx, n, n.Spec, rest)
	}
	d.log.Info("detached", "network", network, "workload", name)
	return nil
}

// Workloads implements api.Service.
func (d *Daemon) Workloads(ctx context.Context, network string) ([]api.Workload, error) {
	_, wls, err := d.loadNetwork(network)
	if err != nil {
		return nil, err
	}
	out := []api.Workload{}
	for _, w := range wls {
		out = append(out, api.Workload{Name: w.Name, IPv4: w.IPv4, IPv6: w.IPv6, NetNS: w.NetNS, Interface: w.IfName, State: d.workloadState(w),
			Kind: kindOf(w), MAC: w.MAC})
	}
	return out, nil
}

// hostLinks returns the names of the links in network's namespace.
func (d *Daemon) hostLinks(network string) map[string]bool {
	out := map[string]bool{}
	ns, err := d.host.Open(d.nsName(network), false)
	if err != nil {
		return out
	}
	defer func() { _ = ns.Close() }()
	links, _ := ns.Links()
	for _, l := range links {
		out[l.Name] = true
	}
	return out
}

func freeIfName(wl netconf.Namespace) (string, error) {
	for i := range 100 {
		name := fmt.Sprintf("znet%d", i)
		if _, err := wl.Link(name); err != nil {
			return name, nil
		}
	}
	return "", api.Conflict("ifname", "znet0..znet99 all exist in the workload's namespace")
}

func validIfName(s string) bool {
	return linkname.Check(s) == nil
}

// writeResolvConf writes etcNetns/NAME/resolv.conf (etcNetns is
// /etc/netns but in tests) for a workload in a named namespace (ip netns
// exec bind-mounts it over /etc/resolv.conf). It returns the path it
// wrote, or "" for unnamed namespaces.
func writeResolvConf(etcNetns string, w *store.Workload, network, nodeID string, gw netip.Addr) (string, error) {
	dir, ok := strings.CutPrefix(w.NetNS, namespaces.Dir+"/")
	if !ok || strings.Contains(dir, "/") {
		return "", nil
	}
	path := filepath.Join(etcNetns, dir, "resolv.conf")
	for _, d := range []string{etcNetns, filepath.Dir(path)} {
		if err := mkdirReadable(d); err != nil {
			return "", fmt.Errorf("writing resolv.conf: %w", err)
		}
	}
	body := fmt.Sprintf("# written by znetd (node %s) for workload %s of network %s\nnameserver %s\nsearch %s.internal\n",
		nodeID, w.Name, network, gw, network)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		return "", fmt.Errorf("writing resolv.conf: %w", err)
	}
	// Whatever znetd's umask (the systemd unit's is 0077): the
	// workload's unprivileged processes read it for every lookup.
	if err := os.Chmod(path, 0o644); err != nil {
		return "", fmt.Errorf("writing resolv.conf: %w", err)
	}
	return path, nil
}

// mkdirReadable makes directory dir, readable by everyone whatever the
// umask, if it does not exist; an existing one is left as it is.
func mkdirReadable(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// removeResolvConf removes the resolv.conf written for w, unless something
// else (another network's attach) has rewritten it since.
func removeResolvConf(w *store.Workload) {
	if w.ResolvConf == "" {
		return
	}
	b, err := os.ReadFile(w.ResolvConf)
	if err != nil || !strings.Contains(string(b), "for workload "+w.Name+" of network "+w.Network+"\n") {
		return
	}
	_ = os.Remove(w.ResolvConf)
	_ = os.Remove(filepath.Dir(w.ResolvConf)) // only if empty
}
