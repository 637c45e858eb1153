// Package overlay makes, adopts and removes the WireGuard device of one
// network on this node: Backend is the device's life cycle, nothing more.
//
// A Device is a name (unique on the machine), the network's namespace and an
// MTU. The cleartext device lives in the network's namespace while its UDP
// socket lives in the underlay namespace (the one znetd runs in), so the
// encrypted traffic leaves through the node's own interfaces and nothing in
// the network's namespace can reach the underlay.
//
// A Backend creates and deletes devices; keys, ports and peers always go
// through wgctrl, which speaks to both kinds:
//
//   - kernel: the link is created in the underlay (its socket stays there)
//     and moved into the network's namespace. Used when the kernel has
//     WireGuard.
//   - userspace: one data-plane process per network (package dataplane,
//     embedding golang.zx2c4.com/wireguard) forked inside the network's
//     namespace, with the pid files and process helpers of that package; its
//     conn.Bind opens the UDP sockets on a thread switched into the underlay,
//     handed to it as fd 3. Data planes outlive znetd: a daemon that exits or
//     is killed leaves them running, and the next one adopts them through
//     their pid files without touching keys, peers or handshakes.
//
// The package does not decide which peers a device has (package peers), nor
// does it add addresses, routes or firewall rules to the network's
// namespace (packages netconf, firewall), nor does it know about DNS (a
// userspace data plane hosts its network's resolver, but where that
// listens is package dataplane's business); it only makes sure the
// WireGuard link exists there and is up.
package overlay
