// Package firewall installs znet's isolation rules inside one network's
// namespace with nftables, over netlink (github.com/google/nftables), never
// by running the nft tool.
//
// A network namespace holds a bridge (the workloads' L2 segment, with the
// gateway addresses), one veth port per workload on that bridge, and the
// overlay (WireGuard) device. The rules live in two tables named "znet":
//
//   - table inet znet: the input chain lets in, to the gateway itself, only
//     loopback, replies (ct established,related), ICMP and ICMPv6 (neighbour
//     discovery included) and DNS (UDP and TCP port 53) from the bridge or the
//     overlay; the forward chain passes bridge<->overlay, overlay->overlay
//     (relaying between hidden nodes) and bridge->bridge (bridged packets
//     that br_netfilter hands to the IP hooks) and drops conntrack-invalid
//     packets; everything else is dropped. The output chain accepts. The
//     access peers' addresses are in two sets, access4 and access6 (a
//     family without access peers has neither set nor rules): the raw
//     chain keeps their packets tracked and the forward chain drops new
//     connections to them, by one lookup per family.
//   - table bridge znet: a prerouting chain sends each frame that enters a
//     known workload port to that port's chain, by one lookup of the input
//     interface in the verdict map ports, and drops frames from any other
//     port. A port's chain accepts only IPv4 from the workload's own
//     address, ARP whose sender IP is that address, and IPv6 from its own
//     address, from link-local fe80::/10, or from :: (ICMPv6 only, for
//     duplicate address detection); it drops router advertisements,
//     redirects and neighbour advertisements for a target that is neither
//     its own address nor link-local, and every other frame (other
//     EtherTypes, VLAN tags included).
//
// So the rules a packet walks are as many for one workload and one access
// peer as for hundreds; only the sets grow, and a lookup in them costs the
// same whatever their size.
//
// Apply replaces both tables' contents in one netlink batch, so the
// namespace is never without rules, and Remove deletes the tables; both are
// idempotent. Apply refills the tables in place rather than deleting them,
// because a deleted verdict map's elements vanish even for the packets
// still walking the old rules; if refilling fails it deletes and adds the
// tables instead. Render shows the rules, sets and maps as text, in the
// style of `nft list ruleset`.
//
// The package leaves out everything outside the namespace (the node's
// underlay is never touched), NAT, rate limits and logging, MAC address
// checks (a workload can still claim another port's MAC on the bridge), and
// link-local spoofing between workloads. It does not create links,
// addresses, routes or sysctls; the caller does. The bridge must be the only
// bridge in the namespace: the bridge table matches ports by name only,
// because matching the bridge itself (meta ibrname) needs a kernel module
// that is not always built (it is missing on the test machines).
package firewall
