package peers

import (
	"net"
	"net/netip"
	"slices"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Diff returns the configuration that turns the device's current peers into
// desired, changing only what differs:
//
//   - a desired peer the device lacks is added with its endpoint, keepalive
//     and allowed IPs;
//   - a peer whose endpoint, allowed IPs or keepalive differ gets an
//     UpdateOnly entry carrying just the fields that changed (allowed IPs
//     with ReplaceAllowedIPs);
//   - a peer the device has but desired does not is removed;
//   - a peer that is already right does not appear at all, so its session
//     and handshake are untouched.
//
// ReplacePeers is never set, nor the device's key, port or firewall mark.
// A desired peer without an endpoint (a hidden peer) keeps whatever endpoint
// the device learned from it. Diff against a device that already matches
// returns a configuration with no peers. Desired peers must be as Desired
// returns them: distinct public keys, canonical AllowedIPs.
func Diff(desired []Peer, current []wgtypes.Peer) wgtypes.Config {
	have := make(map[wgtypes.Key]*wgtypes.Peer, len(current))
	for i := range current {
		have[current[i].PublicKey] = &current[i]
	}
	want := make(map[wgtypes.Key]bool, len(desired))
	var cfg wgtypes.Config
	for _, d := range desired {
		want[d.PublicKey] = true
		c, ok := have[d.PublicKey]
		if !ok {
			cfg.Peers = append(cfg.Peers, addConfig(d))
			continue
		}
		if pc, changed := updateConfig(d, c); changed {
			cfg.Peers = append(cfg.Peers, pc)
		}
	}
	for _, c := range current {
		if !want[c.PublicKey] {
			cfg.Peers = append(cfg.Peers, wgtypes.PeerConfig{PublicKey: c.PublicKey, Remove: true})
		}
	}
	return cfg
}

// addConfig is the configuration that creates peer d from nothing.
func addConfig(d Peer) wgtypes.PeerConfig {
	keepalive := d.Keepalive
	pc := wgtypes.PeerConfig{
		PublicKey:                   d.PublicKey,
		PersistentKeepaliveInterval: &keepalive,
		ReplaceAllowedIPs:           true,
		AllowedIPs:                  ipNets(d.AllowedIPs),
	}
	if d.Endpoint.IsValid() {
		pc.Endpoint = net.UDPAddrFromAddrPort(d.Endpoint)
	}
	return pc
}

// updateConfig is the UpdateOnly configuration that turns the device's peer
// c into d, and whether anything differs at all.
func updateConfig(d Peer, c *wgtypes.Peer) (wgtypes.PeerConfig, bool) {
	pc := wgtypes.PeerConfig{PublicKey: d.PublicKey, UpdateOnly: true}
	changed := false
	if d.Endpoint.IsValid() && d.Endpoint != deviceEndpoint(c.Endpoint) {
		pc.Endpoint = net.UDPAddrFromAddrPort(d.Endpoint)
		changed = true
	}
	if d.Keepalive != c.PersistentKeepaliveInterval {
		keepalive := d.Keepalive
		pc.PersistentKeepaliveInterval = &keepalive
		changed = true
	}
	if !sameAllowedIPs(d.AllowedIPs, c.AllowedIPs) {
		pc.ReplaceAllowedIPs = true
		pc.AllowedIPs = ipNets(d.AllowedIPs)
		changed = true
	}
	return pc, changed
}

// sameAllowedIPs reports whether the device's allowed IPs ns are the
// canonical set want. A device that lists them in want's order is told
// without allocating (a diff of a thousand peers does this for each).
func sameAllowedIPs(want []netip.Prefix, ns []net.IPNet) bool {
	if len(want) == len(ns) {
		i := 0
		for i < len(ns) && devicePrefix(ns[i]) == want[i] {
			i++
		}
		if i == len(ns) {
			return true
		}
	}
	return slices.Equal(want, devicePrefixes(ns))
}

// deviceEndpoint converts an endpoint read from a device, IPv4 addresses in
// their 4-byte form; zero for none.
func deviceEndpoint(a *net.UDPAddr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	ap := a.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// devicePrefixes converts allowed IPs read from a device into the canonical
// form of Peer.AllowedIPs. An entry it cannot convert becomes an invalid
// prefix, which never equals a desired one, so the peer's allowed IPs get
// replaced.
func devicePrefixes(ns []net.IPNet) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ns))
	for _, n := range ns {
		out = append(out, devicePrefix(n))
	}
	slices.SortFunc(out, netip.Prefix.Compare)
	return slices.Compact(out)
}

// devicePrefix converts one net.IPNet, accepting IPv4 addresses and masks in
// either their 4- or 16-byte form; invalid when it cannot.
func devicePrefix(n net.IPNet) netip.Prefix {
	addr, ok := netip.AddrFromSlice(n.IP)
	ones, bits := n.Mask.Size()
	if !ok || bits == 0 {
		return netip.Prefix{}
	}
	switch {
	case addr.Is4In6() && bits == net.IPv4len*8:
		addr = addr.Unmap()
	case addr.Is4() && bits == net.IPv6len*8:
		ones, bits = ones-96, net.IPv4len*8
	}
	if bits != addr.BitLen() || ones < 0 {
		return netip.Prefix{}
	}
	p, ok := canonicalPrefix(netip.PrefixFrom(addr, ones))
	if !ok {
		return netip.Prefix{}
	}
	return p
}

// ipNets converts prefixes into the form wgctrl takes.
func ipNets(ps []netip.Prefix) []net.IPNet {
	out := make([]net.IPNet, 0, len(ps))
	for _, p := range ps {
		out = append(out, net.IPNet{
			IP:   p.Addr().AsSlice(),
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
		})
	}
	return out
}
