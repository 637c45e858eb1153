package daemon

import (
	"context"
	"net"
	"slices"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/netconf"
	"github.com/znet/znet/overlay"
	"github.com/znet/znet/peers"
	"github.com/znet/znet/store"
)

// configuredDev is what a userspace data plane was last configured with:
// its key and port, and the desired peers it was given.
type configuredDev struct {
	pid   int
	key   wgtypes.Key
	port  int
	peers []peers.Peer
}

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
// the record and so compares against the device again. A keepalive raise
// that failed (raiseKeepalives) is not left to that: the next realize of
// any apply reads the device.
func (d *Daemon) configureDeviceOf(ctx context.Context, ns netconf.Namespace, pid int, dev overlay.Device, n *store.Network, desired []peers.Peer, wait map[wgtypes.Key]bool) error {
	cookie, err := ns.Cookie()
	if err != nil {
		d.realized.forget(n.Name) // the configuration changes what it says
		return d.configureDevice(ctx, dev, n, desired, wait, nil)
	}
	e := d.realized.take(n.Name, cookie)
	rec := e.device
	e.device = nil
	if d.realized.takeDoubt(n.Name) {
		rec = nil // a keepalive raise failed: read the device
	}
	key, keyErr := wgtypes.ParseKey(n.PrivateKey)
	switch {
	case pid == 0 || rec == nil || rec.pid != pid:
		err = d.configureDevice(ctx, dev, n, desired, wait, nil)
	case keyErr == nil && rec.key == key && rec.port == n.ListenPort:
		err = d.sendConfig(ctx, dev, diffRemembered(desired, rec.peers), wait)
	default:
		err = d.configureDevice(ctx, dev, n, desired, wait, configuredDevice(rec.key, rec.port, rec.peers))
	}
	if err == nil && keyErr == nil && pid != 0 {
		// A copy: the caller's slice is not the record's to keep.
		e.device = &configuredDev{pid: pid, key: key, port: n.ListenPort, peers: slices.Clone(desired)}
	}
	d.realized.put(n.Name, e)
	return err
}

// configuredDevice is the device as configureDevice leaves it for desired,
// in the form a dump gives (peers.Diff compares against it). A peer
// without an endpoint in desired has none here: Diff leaves the endpoint
// the device learned alone.
func configuredDevice(key wgtypes.Key, port int, desired []peers.Peer) *wgtypes.Device {
	dev := &wgtypes.Device{PrivateKey: key, ListenPort: port, Peers: make([]wgtypes.Peer, 0, len(desired))}
	for _, p := range desired {
		dev.Peers = append(dev.Peers, configuredPeer(p))
	}
	return dev
}

// configuredPeer is p as a dump of a device configured with it shows it.
func configuredPeer(p peers.Peer) wgtypes.Peer {
	wp := wgtypes.Peer{PublicKey: p.PublicKey, PersistentKeepaliveInterval: p.Keepalive, AllowedIPs: make([]net.IPNet, 0, len(p.AllowedIPs))}
	if p.Endpoint.IsValid() {
		wp.Endpoint = net.UDPAddrFromAddrPort(p.Endpoint)
	}
	for _, a := range p.AllowedIPs {
		wp.AllowedIPs = append(wp.AllowedIPs, *ipNet(a))
	}
	return wp
}

// diffRemembered is peers.Diff(desired, configuredDevice(_, _,
// last).Peers) without building that device: a peer equal to the one
// configured before, in a form the device gives back unchanged, cannot
// differ and is skipped; Diff decides for every other one. Building the
// device of a thousand peers and diffing all of it cost 0.8 ms per apply,
// this 0.04 (BenchmarkDiffRemembered, on a loaded machine). Both lists
// have distinct keys (peers.Desired's).
func diffRemembered(desired, last []peers.Peer) wgtypes.Config {
	find := lastIndex(last)
	wanted := make([]bool, len(last))
	var cfg wgtypes.Config
	for i, p := range desired {
		j, ok := find(i, p.PublicKey)
		if ok {
			wanted[j] = true
		}
		if ok && samePeer(p, last[j]) && keptAsIs(p) {
			continue
		}
		var cur []wgtypes.Peer
		if ok {
			cur = []wgtypes.Peer{configuredPeer(last[j])}
		}
		cfg.Peers = append(cfg.Peers, peers.Diff([]peers.Peer{p}, cur).Peers...)
	}
	for j, p := range last {
		if !wanted[j] {
			cfg.Peers = append(cfg.Peers, peers.Diff(nil, []wgtypes.Peer{{PublicKey: p.PublicKey}}).Peers...)
		}
	}
	return cfg
}

// lastIndex returns a function that finds, for the i-th desired peer, the
// index of the peer with key in last. Desired peers come in the same order
// at every apply (by name), so it looks where the previous one was found,
// and one place either side (a member added or removed before); then it
// scans last, and past a few misses (peers reordered) builds a map of it.
// A map of a thousand keys built and read at every apply was half of
// diffRemembered.
func lastIndex(last []peers.Peer) func(i int, key wgtypes.Key) (int, bool) {
	var byKey map[wgtypes.Key]int
	off, misses := 0, 0 // off: last's index less desired's at the previous match
	return func(i int, key wgtypes.Key) (int, bool) {
		for _, d := range [...]int{0, 1, -1} {
			if j := i + off + d; j >= 0 && j < len(last) && last[j].PublicKey == key {
				off += d
				return j, true
			}
		}
		j := -1
		if misses++; misses <= 8 {
			j = slices.IndexFunc(last, func(p peers.Peer) bool { return p.PublicKey == key })
		} else {
			if byKey == nil {
				byKey = make(map[wgtypes.Key]int, len(last))
				for j, p := range last {
					byKey[p.PublicKey] = j
				}
			}
			if k, ok := byKey[key]; ok {
				j = k
			}
		}
		if j < 0 {
			return 0, false
		}
		off = j - i
		return j, true
	}
}

// samePeer reports whether a and b configure a device alike.
func samePeer(a, b peers.Peer) bool {
	return a.Endpoint == b.Endpoint && a.Keepalive == b.Keepalive && slices.Equal(a.AllowedIPs, b.AllowedIPs)
}

// keptAsIs reports whether a device configured with p shows p back as
// Diff reads it: an IPv4 endpoint in its 4-byte form, allowed IPs valid
// and canonical (Desired gives no other). Diff would change anything else
// at every apply, so such a peer is left to it.
func keptAsIs(p peers.Peer) bool {
	if p.Endpoint.IsValid() && (p.Endpoint.Addr().Is4In6() || p.Endpoint.Addr().Zone() != "") {
		return false
	}
	for _, a := range p.AllowedIPs {
		if !a.IsValid() || a.Addr().Is4In6() || a.Masked() != a {
			return false
		}
	}
	return true
}
