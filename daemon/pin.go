package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/namespaces"
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
	var pinErr error
	err = d.withHandle(network, func(h *netlink.Handle) { pinErr = pinPort(h, w.HostIf, mac) })
	if err == nil {
		err = pinErr
	}
	if err != nil {
		return fmt.Errorf("pinning %s to %s: %w", w.Name, w.MAC, err)
	}
	return nil
}

// pinPort turns learning off on the bridge port port and adds a static
// FDB entry for mac on it. "static" (NUD_NOARP), not "permanent": a
// permanent entry would mean the bridge itself owns mac.
func pinPort(h *netlink.Handle, port string, mac net.HardwareAddr) error {
	link, err := h.LinkByName(port)
	if err != nil {
		return fmt.Errorf("finding port %s: %w", port, err)
	}
	if err := h.LinkSetLearning(link, false); err != nil {
		return fmt.Errorf("learning off on %s: %w", port, err)
	}
	fdb := &netlink.Neigh{
		LinkIndex:    link.Attrs().Index,
		Family:       unix.AF_BRIDGE,
		Flags:        netlink.NTF_MASTER,
		State:        netlink.NUD_NOARP,
		HardwareAddr: mac,
	}
	if err := h.NeighSet(fdb); err != nil {
		return fmt.Errorf("static fdb entry on %s: %w", port, err)
	}
	// The port's static entries are exactly this one: a MAC pinned here
	// before (a workload re-pinned) must not keep leading here.
	have, err := retryDump(func() ([]netlink.Neigh, error) { return h.NeighList(link.Attrs().Index, unix.AF_BRIDGE) })
	if err != nil {
		return fmt.Errorf("listing fdb entries of %s: %w", port, err)
	}
	for _, e := range have {
		if e.State == netlink.NUD_NOARP && !bytes.Equal(e.HardwareAddr, mac) {
			e.Flags |= netlink.NTF_MASTER
			if err := h.NeighDel(&e); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("removing fdb entry %s of %s: %w", e.HardwareAddr, port, err)
			}
		}
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
		var (
			mac     net.HardwareAddr
			findErr error
		)
		err := d.withHandle(n.Name, func(h *netlink.Handle) { mac, findErr = workloadSideMAC(h, w) })
		if err == nil {
			err = findErr
		}
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
// w's namespace whose index the bridge end (found with h) names as its
// peer, and which names the bridge end back, so that a path naming another
// namespace by now is not read.
func workloadSideMAC(h *netlink.Handle, w *store.Workload) (net.HardwareAddr, error) {
	host, err := h.LinkByName(w.HostIf)
	if err != nil {
		return nil, fmt.Errorf("finding %s: %w", w.HostIf, err)
	}
	if _, ok := host.(*netlink.Veth); !ok {
		return nil, fmt.Errorf("%s is a %s, not a veth", w.HostIf, host.Type())
	}
	ns, err := namespaces.Open(w.NetNS)
	if err != nil {
		return nil, err
	}
	defer func() { _ = ns.Close() }()
	wh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, err
	}
	defer wh.Close()
	peer, err := wh.LinkByIndex(host.Attrs().ParentIndex)
	if err != nil || peer.Attrs().ParentIndex != host.Attrs().Index {
		return nil, fmt.Errorf("the peer of %s is not in %s", w.HostIf, w.NetNS)
	}
	return peer.Attrs().HardwareAddr, nil
}
