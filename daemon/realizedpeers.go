package daemon

import (
	"context"
	"net"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/netconf"
	"github.com/znet/znet/overlay"
	"github.com/znet/znet/peers"
	"github.com/znet/znet/store"
)

// configureDeviceOf configures the device as configureDevice does; when
// the record of network n shows what the data plane pid was last
// configured with, the difference is taken against the record instead of
// a dump of the device: with a thousand peers the dump (a UAPI round trip
// that lists every peer, parsed back) cost more than the rest of an apply.
//
// Only a userspace data plane (pid not 0) is trusted this way: a new
// process has a new pid, whereas a kernel link re-created by Ensure would
// not show. What the record cannot see is what realized's comment lists,
// plus an endpoint the device learned from a roaming peer (a dump would
// have set it back to the spec's): an apply that changes nothing forgets
// the record and so compares against the device again.
func (d *Daemon) configureDeviceOf(ctx context.Context, ns netconf.Namespace, pid int, dev overlay.Device, n *store.Network, desired []peers.Peer, wait map[wgtypes.Key]bool) error {
	cookie, err := ns.Cookie()
	if err != nil {
		d.realized.forget(n.Name) // the configuration changes what it says
		return d.configureDevice(ctx, dev, n, desired, wait, nil)
	}
	e := d.realized.take(n.Name, cookie)
	var cur *wgtypes.Device
	if pid != 0 && e.device != nil && e.pid == pid {
		cur = e.device
	}
	e.device = nil
	if err := d.configureDevice(ctx, dev, n, desired, wait, cur); err != nil {
		d.realized.put(n.Name, e)
		return err
	}
	if key, err := wgtypes.ParseKey(n.PrivateKey); err == nil && pid != 0 {
		e.device, e.pid = configuredDevice(key, n.ListenPort, desired), pid
	}
	d.realized.put(n.Name, e)
	return nil
}

// configuredDevice is the device as configureDevice leaves it for desired,
// in the form a dump gives (peers.Diff compares against it). A peer
// without an endpoint in desired has none here: Diff leaves the endpoint
// the device learned alone.
func configuredDevice(key wgtypes.Key, port int, desired []peers.Peer) *wgtypes.Device {
	dev := &wgtypes.Device{PrivateKey: key, ListenPort: port, Peers: make([]wgtypes.Peer, 0, len(desired))}
	for _, p := range desired {
		wp := wgtypes.Peer{PublicKey: p.PublicKey, PersistentKeepaliveInterval: p.Keepalive, AllowedIPs: make([]net.IPNet, 0, len(p.AllowedIPs))}
		if p.Endpoint.IsValid() {
			wp.Endpoint = net.UDPAddrFromAddrPort(p.Endpoint)
		}
		for _, a := range p.AllowedIPs {
			wp.AllowedIPs = append(wp.AllowedIPs, *ipNet(a))
		}
		dev.Peers = append(dev.Peers, wp)
	}
	return dev
}
