// Package lab builds a simulated multi-node grid on one machine: an
// "internet" namespace with a bridge, one namespace per node with a veth
// into it (underlay addresses from 198.18.0.0/15, the benchmarking range),
// and one znetd process per node, each with its own state dir and socket.
//
// Every namespace it makes carries the lab's name, so several labs (a demo
// and concurrent tests) live side by side; every lab has its own internet
// namespace, so their underlay addresses never meet. Nothing is added to the
// machine's own namespace.
//
// It also makes named namespaces for workloads (AddWorkloadNS), as a
// container runtime would, and remembers them so that Down removes them
// with their /etc/netns dirs.
//
// The lab does not deploy networks or attach workloads; `znet lab up` does
// that through the API, like any orchestrator would.
package lab
