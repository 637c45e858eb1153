package daemon

import (
	"fmt"
	"net/netip"

	"github.com/znet/znet/netconf"
)

// IPv6 egress: only where the node's underlay has a global IPv6 address and
// an IPv6 default route. The network's flows are rewritten to an IPv6
// transfer address in the namespace and masqueraded to the node's global
// address in the underlay, as for IPv4.

// transfer6Prefix holds the IPv6 transfer addresses: a unique local /48 of
// znet's own ("zneg" in its global ID), so the addresses are never routed
// beyond the node and collide only with a range someone copied from here.
// Unique local destinations are closed to egress (firewall.ClosedRanges),
// so no workload can reach another network's transfer address.
var transfer6Prefix = netip.MustParsePrefix("fd5a:6e65:6567::/48")

// egressNextHop6 is the next hop of the IPv6 default route in a network's
// namespace; like egressNextHop no interface has it, a permanent neighbour
// maps it to the underlay end's MAC.
var egressNextHop6 = netip.MustParseAddr("fe80::1")

// transferAddr6 is the IPv6 transfer address of the network whose IPv4 one
// is src: the same two low bytes (the listen port) in transfer6Prefix, so
// it is as unique on the node as src.
func transferAddr6(src netip.Addr) netip.Addr {
	b, s := transfer6Prefix.Addr().As16(), src.As4()
	b[14], b[15] = s[2], s[3]
	return netip.AddrFrom16(b)
}

// egress6Uplinks names the devices of the underlay's IPv6 default routes if
// the node has a global IPv6 address (not unique local, not tentative);
// none means no IPv6 egress.
func egress6Uplinks(u netconf.Underlay) ([]string, error) {
	addrs, err := u.Addrs()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		ip := a.Prefix.Addr()
		if ip.Is6() && ip.IsGlobalUnicast() && !ip.IsPrivate() && !a.Unusable {
			return u.DefaultRoutes(true)
		}
	}
	return nil, nil
}

// egress6Source returns the IPv6 transfer address for the network whose
// IPv4 one is src if the node has IPv6 egress (unset if not), and the IPv6
// uplinks.
func egress6Source(u netconf.Underlay, src netip.Addr) (netip.Addr, []string, error) {
	up6, err := egress6Uplinks(u)
	if err != nil || len(up6) == 0 {
		return netip.Addr{}, nil, err
	}
	return transferAddr6(src), up6, nil
}

// egress6Ready reports whether the node has IPv6 egress now, for the
// workloads' default routes; an error reading the underlay counts as no.
func (d *Daemon) egress6Ready() bool {
	var up6 []string
	err := d.withUnderlay(func(u netconf.Underlay) error {
		var err error
		up6, err = egress6Uplinks(u)
		return err
	})
	if err != nil {
		d.log.Warn("egress: reading the underlay's IPv6", "err", err)
	}
	return len(up6) > 0
}

// ipv6On are the sysctls that let a veth end carry IPv6 without taking
// routes or addresses from router advertisements.
func ipv6On(dev string) []netconf.Sysctl {
	return []netconf.Sysctl{
		{Key: "net/ipv6/conf/" + dev + "/accept_ra", Value: "0"},
		{Key: "net/ipv6/conf/" + dev + "/autoconf", Value: "0"},
		{Key: "net/ipv6/conf/" + dev + "/disable_ipv6", Value: "0"},
	}
}

// plumbEgressInside6 gives the namespace an IPv6 default route through
// the egress veth (src6 set) or keeps IPv6 off it (unset). The transfer
// address is not put on the veth: source NAT needs none, and replies are
// translated back before routing.
func plumbEgressInside6(ns netconf.Namespace, out netconf.LinkInfo, src6 netip.Addr) error {
	if !src6.IsValid() {
		return ns.Sysctls([]netconf.Sysctl{{Key: "net/ipv6/conf/" + egressIfName + "/disable_ipv6", Value: "1"}})
	}
	if err := ns.Sysctls(ipv6On(egressIfName)); err != nil {
		return err
	}
	return egressDefaultRoute(ns, out, egressNextHop6)
}

// plumbEgressUnderlay6 routes the IPv6 transfer address src6 to the
// underlay's end (or keeps IPv6 off it when unset). IPv6 forwards only with
// the namespace-wide switch (net.ipv6.conf.all.forwarding), which also
// makes the node ignore router advertisements where accept_ra is 1: the
// uplinks that take them are set to 2 first, so a node configured by
// SLAAC keeps its default route.
func plumbEgressUnderlay6(u netconf.Underlay, out, inner netconf.LinkInfo, src6 netip.Addr, up6 []string) error {
	if !src6.IsValid() {
		return u.Sysctls([]netconf.Sysctl{{Key: "net/ipv6/conf/" + out.Name + "/disable_ipv6", Value: "1"}})
	}
	sysctls, err := keepRAs(u, up6)
	if err != nil {
		return err
	}
	sysctls = append(sysctls, ipv6On(out.Name)...)
	sysctls = append(sysctls, netconf.Sysctl{Key: "net/ipv6/conf/all/forwarding", Value: "1"})
	if err := u.Sysctls(sysctls); err != nil {
		return err
	}
	if err := u.Neigh(out.Name, src6, inner.MAC); err != nil {
		return err
	}
	if err := u.AddRoute(out.Name, netip.PrefixFrom(src6, 128), netip.Addr{}); err != nil {
		return fmt.Errorf("underlay: %w", err)
	}
	return nil
}

// keepRAs lists accept_ra=2 for every device in devs that takes router
// advertisements now (accept_ra 1), which forwarding would stop.
func keepRAs(u netconf.Underlay, devs []string) ([]netconf.Sysctl, error) {
	var out []netconf.Sysctl
	for _, dev := range devs {
		key := "net/ipv6/conf/" + dev + "/accept_ra"
		v, err := u.Sysctl(key)
		if err != nil {
			return nil, err
		}
		if v == "1" {
			out = append(out, netconf.Sysctl{Key: key, Value: "2"})
		}
	}
	return out, nil
}
