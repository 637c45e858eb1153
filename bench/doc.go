// Package bench measures znet on this machine (issue 6) and sets the
// figures beside their goals: the data plane against bare wireguard-go
// (the same library in a small program, and Debian's wireguard-go binary)
// and a raw veth, measured in the same run with the contenders alternating;
// the control plane (network apply, workload attach, resident memory per
// idle network, adding and removing one peer on a network of 1,000 peers,
// deploying a network over a 20-node lab); and DNS (dnsperf against a
// node's resolver serving 1,000 names and against NSD serving the same
// zone, alternating; latency percentiles when paced at 10,000 qps; how
// fast a new name reaches every node of a 5-node lab). Every figure is the
// median of several rounds.
//
// Each part builds its own labs in temporary directories, named with a
// unique "zt" prefix, and removes them, checking that no namespace or
// process of them is left. Benchmarks report; they never fail on a number.
//
// It leaves out propagation to 20 nodes (5 are measured), and it does not
// attach 1,000 real workloads for the DNS zone: the names are pushed to the
// resolver through its control socket, as znetd would after 1,000
// attaches. The 1,000 peers are key-only members with no endpoint.
package bench
