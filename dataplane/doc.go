// Package dataplane is the data-plane program and its processes.
//
// The program (Main; cmd/znetd-dataplane, or `znetd dataplane`) runs in a
// network's namespace with the underlay namespace as fd 3, in one of two
// modes:
//
//   - dataplane (Run): the network's userspace WireGuard device, its UDP
//     sockets opened in the underlay, its resolver, and a drops file; it
//     drops its privileges once its port is bound (privileges.go).
//   - resolver (RunResolver): only the network's resolver, for a network
//     whose device runs no process (kernel WireGuard), with the same
//     privilege drop.
//
// Either serves the network's resolver at ResolverSocket, so the daemon
// finds it without knowing which process hosts it.
//
// The process side: pid files, identity by /proc/PID/cmdline and namespace
// inode, pidfd wait and exit reasons, used by overlay's userspace backend
// for its data planes, and Resolvers, which starts, adopts, waits for and
// stops the resolver-only processes. Both kinds of process outlive znetd.
package dataplane
