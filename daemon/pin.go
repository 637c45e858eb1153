package daemon

import (
	"fmt"
	"net"
	"slices"

	"github.com/znet/znet/netconf"
	"github.com/znet/znet/store"
	"github.com/znet/znet/tap"
)

// pinWorkload pins w's bridge port to w's MAC on the bridge's side: the
// port learns nothing (a frame from a forged source can never move another
// workload's address to it) and a static FDB entry sends frames for w's
// MAC to it alone. The firewall drops the forged frames themselves. A
// workload stored before MACs were recorded is left as it was.
func (d *Daemon) pinWorkload(network string, w *store.Workload) error {
	if w.MAC == "" {
		return nil
	}
	mac, err := net.ParseMAC(w.MAC)
	if err != nil {
		return fmt.Errorf("stored MAC of %s: %w", w.Name, err)
	}
	ns, err := d.host.Open(d.nsName(network), false)
	if err == nil {
		err = ns.Pin(w.HostIf, mac)
		_ = ns.Close()
	}
	if err != nil {
		return fmt.Errorf("pinning %s to %s: %w", w.Name, w.MAC, err)
	}
	return nil
}

// bridgeMAC is the gateway's MAC in network: derived like a workload's,
// from a name no workload can have (names are never empty).
func bridgeMAC(network string) net.HardwareAddr { return tap.MAC(network, "") }

// tapHostMAC is the MAC of a tap device itself, on the host side: the
// guest's with its first byte fe, as libvirt does. It must differ from
// the guest's (the bridge treats its ports' own MACs as local), and fe
// keeps it unicast and locally administered.
func tapHostMAC(guest net.HardwareAddr) net.HardwareAddr {
	mac := slices.Clone(guest)
	mac[0] = 0xfe
	return mac
}

// backfillMACs records, pins and saves the MAC of the veth workloads of n
// stored before znet recorded MACs: the MAC their end has now. Then the
// firewall pins them too. Failures are logged; such a workload stays
// unpinned, as it was.
func (d *Daemon) backfillMACs(n *store.Network, wls []*store.Workload) {
	changed := false
	for _, w := range wls {
		if w.MAC != "" || isTap(w) {
			continue
		}
		mac, err := d.workloadSideMAC(n.Name, w)
		if err == nil {
			w.MAC = mac.String()
			if err = d.pinWorkload(n.Name, w); err == nil {
				err = d.store.Update(func(tx *store.Tx) error { return tx.PutWorkload(w) })
			}
		}
		if err != nil {
			w.MAC = ""
			d.log.Warn("recording a workload's MAC", "network", n.Name, "workload", w.Name, "err", err)
			continue
		}
		d.log.Info("recorded a workload's MAC", "network", n.Name, "workload", w.Name, "mac", w.MAC)
		changed = true
	}
	if changed {
		if err := d.applyFirewall(n, wls); err != nil {
			d.log.Warn("pinning recorded MACs in the firewall", "network", n.Name, "err", err)
		}
	}
}

// workloadSideMAC returns the MAC of w's end of its veth pair: the link in
// w's namespace whose index the bridge end (in network's namespace) names
// as its peer, and which names the bridge end back, so that a path naming
// another namespace by now is not read.
func (d *Daemon) workloadSideMAC(network string, w *store.Workload) (net.HardwareAddr, error) {
	ns, err := d.host.Open(d.nsName(network), false)
	if err != nil {
		return nil, err
	}
	defer func() { _ = ns.Close() }()
	host, err := ns.Link(w.HostIf)
	if err != nil {
		return nil, err
	}
	if host.Kind != "veth" {
		return nil, fmt.Errorf("%s is a %s, not a veth", w.HostIf, host.Kind)
	}
	wl, _, err := d.host.OpenPath(w.NetNS)
	if err != nil {
		return nil, err
	}
	defer func() { _ = wl.Close() }()
	peer, ok := vethPeer(wl, host)
	if !ok {
		return nil, fmt.Errorf("the peer of %s is not in %s", w.HostIf, w.NetNS)
	}
	return peer.MAC, nil
}

// vethPeer finds the other end of veth host in ns: the link with the index
// host names as its peer, if it is a veth that names host back (an index
// alone may be another link's by now).
func vethPeer(ns netconf.Namespace, host netconf.LinkInfo) (netconf.LinkInfo, bool) {
	peer, ok := linkByIndex(ns, host.Peer)
	if !ok || peer.Kind != "veth" || peer.Peer != host.Index {
		return netconf.LinkInfo{}, false
	}
	return peer, true
}

// linkByIndex finds the link of ns with index idx (the workload may have
// renamed its end).
func linkByIndex(ns netconf.Namespace, idx int) (netconf.LinkInfo, bool) {
	links, err := ns.Links()
	if err != nil || idx <= 0 {
		return netconf.LinkInfo{}, false
	}
	for _, l := range links {
		if l.Index == idx {
			return l, true
		}
	}
	return netconf.LinkInfo{}, false
}
