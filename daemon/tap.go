package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/znet/znet/api"
	"github.com/znet/znet/ipam"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/netconf"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
	"github.com/znet/znet/tap"
)

// tapPrefix starts the name of every workload tap, so a stray one (an
// attach that crashed before it was saved) can be told from other links.
const tapPrefix = "zt"

// tapIfName is the tap device of a workload: unique inside the network's
// namespace and short enough for IFNAMSIZ.
func tapIfName(workload string) string {
	sum := sha256.Sum256([]byte(workload))
	return tapPrefix + hex.EncodeToString(sum[:])[:10]
}

// isTap reports whether w is a VM's NIC.
func isTap(w *store.Workload) bool { return w.Kind == api.KindTap }

// kindOf returns w's kind as the API names it.
func kindOf(w *store.Workload) string {
	if isTap(w) {
		return api.KindTap
	}
	return api.KindNetNS
}

// checkTapRequest refuses what a tap attach cannot use.
func checkTapRequest(req api.AttachRequest) error {
	switch {
	case req.NetNS != "":
		return api.Invalid("netns", "a tap lives in the network's namespace; give --tap or --netns, not both")
	case req.IfName != "":
		return api.Invalid("ifname", "a tap's name is chosen by znetd; the guest names its NIC itself")
	case req.Queues < 0 || req.Queues > tap.MaxQueues:
		return api.Invalid("queues", "%d is not 1-%d", req.Queues, tap.MaxQueues)
	}
	if req.MAC != "" {
		if _, err := tap.ParseMAC(req.MAC); err != nil {
			return api.Invalid("mac", "%v", err)
		}
	}
	return nil
}

// shapeWorkload gives a freshly allocated w its kind, MAC and, for a tap,
// its device; it refuses a MAC another workload of the network already
// uses (the bridge pins each MAC to one port).
func (d *Daemon) shapeWorkload(n *store.Network, w *store.Workload, others []*store.Workload, req api.AttachRequest) error {
	mac := tap.MAC(n.Name, w.Name)
	if req.MAC != "" {
		mac, _ = tap.ParseMAC(req.MAC) // checked by checkTapRequest
	}
	w.MAC = mac.String()
	for _, o := range others {
		if o.MAC == w.MAC {
			return api.Conflict("mac", "%s is the MAC of workload %s", w.MAC, o.Name)
		}
	}
	if !req.Tap {
		w.Kind = api.KindNetNS
		return nil
	}
	w.Kind = api.KindTap
	w.NetNS = namespaces.Path(d.nsName(n.Name))
	w.IfName = tapIfName(w.Name)
	w.HostIf = w.IfName
	w.Queues = max(req.Queues, 1)
	return nil
}

// plumbPort makes w's port on the bridge (a veth pair into wlNS, or a tap,
// which needs no wlNS) and pins it to w's MAC. On error nothing is left
// behind.
func (d *Daemon) plumbPort(n *store.Network, subnets ipam.Subnets, w *store.Workload, wlNS netconf.Namespace, pickName bool) error {
	var err error
	if isTap(w) {
		err = d.plumbTap(n, w)
	} else {
		err = d.plumb(n, subnets, w, wlNS, pickName)
	}
	if err != nil {
		return err
	}
	if err := d.pinWorkload(n.Name, w); err != nil {
		d.unplumb(n, w)
		return err
	}
	return nil
}

// plumbTap makes w's persistent tap in the network's namespace, on the
// bridge, with the overlay MTU and its own MAC (tapHostMAC; the guest's is
// w's), and sets it up (it carries
// traffic once a monitor attaches). On error the tap is removed.
func (d *Daemon) plumbTap(n *store.Network, w *store.Workload) error {
	mac, err := tap.ParseMAC(w.MAC)
	if err != nil {
		return fmt.Errorf("stored MAC of %s: %w", w.Name, err)
	}
	ns, err := d.host.Open(d.nsName(n.Name), false)
	if err != nil {
		return err
	}
	defer func() { _ = ns.Close() }()
	br, err := ns.Link(bridgeName)
	if err != nil {
		return fmt.Errorf("finding bridge: %w", err)
	}
	// A leftover of an attach that crashed before it was saved.
	_ = ns.DeleteLink(w.HostIf)
	// The bridge has the MTU realize chose for the network on this node.
	port := netconf.Port{Name: w.HostIf, Master: bridgeName, MTU: br.MTU, Tap: true, Queues: w.Queues, MAC: tapHostMAC(mac)}
	if err := ns.AddPort(port, nil); err != nil {
		d.unplumb(n, w)
		return err
	}
	return nil
}

// attachment is what workload w of network n (applied with s) got, as
// Attach and Workload answer it.
func (d *Daemon) attachment(network string, s *spec.Spec, subnets ipam.Subnets, w *store.Workload) api.Attachment {
	a := api.Attachment{
		Kind: kindOf(w), Interface: w.IfName, NetNS: w.NetNS, MAC: w.MAC,
		IPv4: w.IPv4, IPv6: w.IPv6,
		Gateway: subnets.Gateway4, Gateway6: subnets.Gateway6,
		DNS:    []netip.Addr{subnets.Gateway4, subnets.Gateway6},
		MTU:    s.MTU,
		Subnet: subnets.V4, Subnet6: subnets.V6,
		Domain: network + ".internal",
		Queues: w.Queues,
	}
	// The MTU this node uses, which it may have derived (the spec may
	// name none); the spec's when the namespace is not there to ask.
	if mtu, err := d.linkMTU(network); err == nil {
		a.MTU = mtu
	}
	for _, r := range []api.Route{{To: s.IPRange, Via: subnets.Gateway4}, {To: s.IPv6Range, Via: subnets.Gateway6}} {
		if r.To.Bits() != subnetBits(r.To, subnets) {
			a.Routes = append(a.Routes, r)
		}
	}
	if s.Egress {
		a.Routes = append(a.Routes, egressRoutes(subnets, d.egress6Ready())...)
	}
	return a
}

// Workload implements api.Service.
func (d *Daemon) Workload(ctx context.Context, network, name string) (api.Attachment, error) {
	if err := api.CheckName("workload", name); err != nil {
		return api.Attachment{}, err
	}
	n, wls, err := d.loadNetwork(network)
	if err != nil {
		return api.Attachment{}, err
	}
	for _, w := range wls {
		if w.Name != name {
			continue
		}
		if n.Spec == nil {
			return api.Attachment{}, api.Conflict("network", "network %s is not applied", network)
		}
		subnets, err := d.subnetsOf(n.Spec)
		if err != nil {
			return api.Attachment{}, err
		}
		return d.attachment(network, n.Spec, subnets, w), nil
	}
	return api.Attachment{}, api.NotFound("workload", "no workload %s in %s", name, network)
}

// isWorkloadPort reports whether l is a workload's port on the bridge: a
// veth, or a tap named by tapIfName.
func isWorkloadPort(l netconf.LinkInfo) bool {
	switch l.Kind {
	case "veth":
		return true
	case "tuntap":
		return len(l.Name) > len(tapPrefix) && l.Name[:len(tapPrefix)] == tapPrefix
	}
	return false
}
