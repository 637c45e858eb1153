// Package netconf configures the kernel objects inside one network
// namespace of this node: the links znet makes or owns there (the
// workloads' bridge, the overlay device once its backend made it), their
// MTUs, MACs and addresses, the routes through a link, the proxy
// neighbours, the sysctls, and the firewall's installation (through
// firewall.Installer).
//
// Host opens namespaces by name (making them when asked), deletes and
// lists them; a Namespace is one open namespace, used by one goroutine at a
// time and closed by its opener. Kernel is the implementation over netlink
// and /proc/sys; netconftest holds a recording fake that renders what a
// namespace holds as text, so that the daemon's logic (apply, rollback,
// recover, access) is tested without root.
//
// The package decides nothing: which links, addresses and routes a network
// needs is the daemon's. It leaves out the WireGuard devices themselves
// (overlay), the rules of the firewall (firewall), the workloads' own
// namespaces, veths and taps, and the way out of egress networks, which the
// daemon still configures through the netlink handles of Raw.
package netconf
