// Package daemon is the node agent behind znetd: it keeps the node's state
// (store), and makes the kernel match it — one network namespace per network
// with a bridge for workloads, the WireGuard device (overlay), routes to the
// other members, nftables isolation (firewall) and veth pairs into workload
// namespaces. It implements api.Service.
//
// Every mutation runs under one lock and follows the same order: validate,
// change the kernel, then commit the state in one transaction; a failure
// half way undoes the kernel changes, so the node stays at its last good
// state. Recover, run at start, makes the kernel match the state again after
// a crash or reboot and removes objects of this node that the state does not
// know.
//
// The kernel work goes through netconf (a fake in the tests that run
// without root): the networks' namespaces, the workloads' namespaces and
// ports, and the underlay for the way out. Only the derivation of the
// overlay MTU from the underlay's routes (mtu.go) still uses netlink
// directly.
//
// It leaves out the HTTP surface (api), the data-plane process (overlay) and
// decoding specs (spec).
package daemon
