// Package netconf configures the kernel objects inside the network
// namespaces of this node: the links znet makes or owns there (the
// workloads' bridge, the overlay device once its backend made it, the
// workloads' veths and taps, the egress veth), their MTUs, MACs and
// addresses, the routes through a link or via a gateway, the proxy and
// permanent neighbours, the bridge ports' MAC pins, the sysctls, the
// tracked flows, and the firewall's installation (through
// firewall.Installer).
//
// Host opens namespaces by name (making them when asked), deletes and
// lists them, opens a workload's namespace by path together with its
// identity, and opens the underlay; a Namespace is one open namespace, used
// by one goroutine at a time and closed by its opener, and an Underlay is
// the underlay's, which also tells where the node's traffic leaves and
// holds the egress translation table. Kernel is the implementation over
// netlink and /proc/sys; netconftest holds a recording fake that renders
// what each namespace holds as text and can fail any step, so that the
// daemon's logic (apply, rollback, recover, access, attach and detach,
// MTU following, egress) is tested without root.
//
// The package decides nothing: which links, addresses and routes a network
// needs is the daemon's. It leaves out the WireGuard devices themselves
// (overlay) and the rules of the firewall (firewall).
package netconf
