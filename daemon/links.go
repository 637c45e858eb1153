package daemon

import (
	"net/netip"

	"github.com/znet/znet/netconf"
	"github.com/znet/znet/store"
)

// bridgeName is the workloads' L2 segment inside every network namespace.
const bridgeName = "znbr"

// The netlink helpers the derivation of the overlay MTU from the
// underlay's routes (mtu.go) and the root tests use; the rest of the
// daemon's kernel work is behind netconf.
var (
	ipNet    = netconf.IPNet
	prefixOf = netconf.PrefixOf
)

// retryDump is netconf.RetryDump (generic functions cannot be aliased).
func retryDump[T any](fn func() ([]T, error)) ([]T, error) { return netconf.RetryDump(fn) }

// networkSysctls switch on forwarding inside a network's namespace, keep
// IPv6 from configuring itself from router advertisements, and keep the
// bridge's forwarded frames off the IP hooks.
var networkSysctls = append([]netconf.Sysctl{
	{Key: "net/ipv4/ip_forward", Value: "1"},
	{Key: "net/ipv6/conf/all/forwarding", Value: "1"},
	{Key: "net/ipv6/conf/default/accept_ra", Value: "0"},
	{Key: "net/ipv6/conf/default/autoconf", Value: "0"},
	{Key: "net/ipv6/conf/default/accept_dad", Value: "0"},
	{Key: "net/ipv4/conf/all/rp_filter", Value: "1"},
	{Key: "net/ipv4/conf/default/rp_filter", Value: "1"},
	{Key: "net/ipv4/conf/all/accept_redirects", Value: "0"},
	{Key: "net/ipv6/conf/all/accept_redirects", Value: "0"},
	// Access peers' addresses sit inside the workloads' on-link subnet
	// but live behind the WireGuard device: the gateway answers ARP and
	// neighbour solicitations for them (proxy ARP follows routes; NDP
	// needs an entry per address, see proxyAddrs).
	{Key: "net/ipv4/conf/default/proxy_arp", Value: "1"},
	{Key: "net/ipv6/conf/default/proxy_ndp", Value: "1"},
	{Key: "net/ipv6/conf/all/proxy_ndp", Value: "1"},
}, bridgeOffIPHooks()...)

// bridgeSysctls make the bridge hand the frames it forwards to the IP (and
// ARP) firewall hooks; they exist only while br_netfilter is loaded.
var bridgeSysctls = []string{
	"net/bridge/bridge-nf-call-iptables",
	"net/bridge/bridge-nf-call-ip6tables",
	"net/bridge/bridge-nf-call-arptables",
}

// bridgeOffIPHooks stops a network's bridge from calling the IP hooks for
// frames it forwards between workloads: the bridge table checks those
// frames already, and the inet table accepts them, so the detour through
// br_netfilter (on by default wherever the module is loaded, e.g. by
// Docker) cost every bridged packet without deciding anything. Routed
// packets reach the IP hooks as before. Without the module the keys do not
// exist, and there is nothing to switch off.
func bridgeOffIPHooks() []netconf.Sysctl {
	out := make([]netconf.Sysctl, 0, len(bridgeSysctls))
	for _, k := range bridgeSysctls {
		out = append(out, netconf.Sysctl{Key: k, Value: "0", Optional: true})
	}
	return out
}

// proxyAddrs are the addresses the bridge answers neighbour solicitations
// for: the access peers' IPv6 addresses.
func proxyAddrs(acc []*store.AccessPeer) []netip.Addr {
	out := make([]netip.Addr, 0, len(acc))
	for _, a := range acc {
		out = append(out, a.IPv6)
	}
	return out
}
