package netconftest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/znet/znet/firewall"
	"github.com/znet/znet/netconf"
)

// UnderlayName names the underlay for Render and Sysctl.
const UnderlayName = "underlay"

// Underlay is the fake's underlay, open.
type Underlay struct{ *Namespace }

var _ netconf.Underlay = (*Underlay)(nil)

// lookupLocked returns namespace name, the underlay for UnderlayName.
func (h *Host) lookupLocked(name string) *space {
	if name == UnderlayName {
		return h.under
	}
	return h.spaces[name]
}

// AddUplink gives the underlay link name with addrs and, with def4 and
// def6, the default routes of those families through it, taking router
// advertisements (accept_ra 1), as a node's uplink is.
func (h *Host) AddUplink(name string, addrs []netip.Prefix, def4, def6 bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.under
	s.add(name, &link{kind: "device", mtu: 1500, up: true, addrs: sortedPrefixes(addrs)})
	var defs []netip.Prefix
	if def4 {
		defs = append(defs, netip.PrefixFrom(netip.IPv4Unspecified(), 0))
	}
	if def6 {
		defs = append(defs, netip.PrefixFrom(netip.IPv6Unspecified(), 0))
	}
	if len(defs) > 0 {
		s.routes[name] = sortedPrefixes(defs)
	}
	s.sysctls["net/ipv6/conf/"+name+"/accept_ra"] = "1"
}

// Uplink returns what the underlay's egress table translates.
func (h *Host) Uplink() []firewall.EgressLink {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.uplink)
}

// Underlay implements netconf.Host.
func (h *Host) Underlay() (netconf.Underlay, error) {
	return &Underlay{&Namespace{h: h, name: UnderlayName, s: h.under}}, nil
}

// AddRoute implements netconf.Namespace.
func (n *Namespace) AddRoute(name string, dst netip.Prefix, hop netip.Addr) error {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if err := n.h.failLocked(OpAddRoute, n.name, name+" "+dst.String()); err != nil {
		return err
	}
	if _, err := n.linkLocked(name); err != nil {
		return err
	}
	if hop.IsValid() {
		rs := slices.DeleteFunc(n.s.via[name], func(r route) bool { return r.dst == dst })
		rs = append(rs, route{dst: dst, gw: hop, onlink: true})
		slices.SortFunc(rs, func(a, b route) int { return a.dst.Compare(b.dst) })
		n.s.via[name] = rs
		return nil
	}
	if !slices.Contains(n.s.routes[name], dst) {
		n.s.routes[name] = sortedPrefixes(append(n.s.routes[name], dst))
	}
	return nil
}

// Neigh implements netconf.Namespace.
func (n *Namespace) Neigh(name string, ip netip.Addr, mac net.HardwareAddr) error {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if err := n.h.failLocked(OpNeigh, n.name, name+" "+ip.String()); err != nil {
		return err
	}
	if _, err := n.linkLocked(name); err != nil {
		return err
	}
	if n.s.neighs[name] == nil {
		n.s.neighs[name] = map[netip.Addr]net.HardwareAddr{}
	}
	n.s.neighs[name][ip] = slices.Clone(mac)
	return nil
}

// Sysctls implements netconf.Namespace.
func (n *Namespace) Sysctls(sysctls []netconf.Sysctl) error {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if err := n.h.failLocked(OpSysctls, n.name, ""); err != nil {
		return err
	}
	for _, s := range sysctls {
		n.s.sysctls[s.Key] = s.Value
	}
	return nil
}

// Sysctl implements netconf.Namespace: a key never written does not exist.
func (n *Namespace) Sysctl(key string) (string, error) {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	v, ok := n.s.sysctls[key]
	if !ok {
		return "", fmt.Errorf("reading %s: no such key", key)
	}
	return v, nil
}

// FlushConntrack implements netconf.Namespace; the fake tracks no flows,
// the call shows in Calls.
func (n *Namespace) FlushConntrack(addr netip.Addr) error {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	return n.h.failLocked(OpFlush, n.name, addr.String())
}

// DefaultRoutes implements netconf.Underlay.
func (u *Underlay) DefaultRoutes(v6 bool) ([]string, error) {
	u.h.mu.Lock()
	defer u.h.mu.Unlock()
	var out []string
	for name, ps := range u.s.routes {
		for _, p := range ps {
			if p.Bits() == 0 && p.Addr().Is6() == v6 {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// Addrs implements netconf.Underlay.
func (u *Underlay) Addrs() ([]netconf.Addr, error) {
	u.h.mu.Lock()
	defer u.h.mu.Unlock()
	var out []netconf.Addr
	for _, l := range u.s.links {
		for _, p := range l.addrs {
			out = append(out, netconf.Addr{Prefix: p})
		}
	}
	slices.SortFunc(out, func(a, b netconf.Addr) int { return a.Prefix.Compare(b.Prefix) })
	return out, nil
}

// RouteSource implements netconf.Underlay: the first address of dst's
// family on a link with a default route of that family.
func (u *Underlay) RouteSource(dst netip.Addr) (netip.Addr, error) {
	u.h.mu.Lock()
	defer u.h.mu.Unlock()
	for name, ps := range u.s.routes {
		for _, p := range ps {
			if p.Bits() != 0 || p.Addr().Is6() != dst.Is6() {
				continue
			}
			for _, a := range u.s.links[name].addrs {
				if a.Addr().Is6() == dst.Is6() {
					return a.Addr(), nil
				}
			}
		}
	}
	return netip.Addr{}, errors.New("network is unreachable")
}

// InstallUplink implements netconf.Underlay.
func (u *Underlay) InstallUplink(links []firewall.EgressLink) error {
	u.h.mu.Lock()
	defer u.h.mu.Unlock()
	if err := u.h.failLocked(OpUplink, UnderlayName, ""); err != nil {
		return err
	}
	u.h.uplink = slices.Clone(links)
	return nil
}
