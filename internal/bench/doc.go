// Package bench measures znet on this machine (issues 6 and 17) and sets
// the figures beside their goals, in seven parts:
//
//   - dataplane: znet against the bare wireguard-go library (the same
//     library in a small program) in pairs: each round runs both back to
//     back and takes their ratio within the round, with the round's load
//     average; Debian's wireguard-go binary and a raw veth follow as
//     references. The bare contenders run in sessions of their own, as
//     znet's data planes do, their UDP crosses the same lab underlay, their
//     devices have znet's MTU, and their iperf3 and ping run in workload
//     namespaces joined to the node by a routed veth, as znet's run in
//     workload namespaces behind a veth. That veth hop (the raw veth row
//     shows its cost: two crossings per round trip) is what any workload
//     in a namespace of its own pays whichever WireGuard carries it, so
//     it is left out of znet's cost; what znet adds on top (the network's
//     bridge, its per-port anti-spoofing chain, the raw, forward and MSS
//     rules of its firewall) is measured as znet's. Until issue 17 the
//     bare contenders ran their traffic in the node namespace, beside
//     their TUN, so znet's ratio also paid four veth crossings per round
//     trip (about +0.1 ms of RTT and 7-14 % of throughput on a quiet
//     machine).
//   - control: network apply, workload attach, memory per idle network.
//   - churn: adding and removing one member of a 1,000-member network.
//   - deploy: deploying a network over a 20-node lab.
//   - dns: dnsperf against a node's resolver serving 1,000 names and
//     against NSD serving the same zone, alternating; latency percentiles
//     at 10,000 qps; a new name reaching every node of a 20-node lab.
//   - scale: --networks one-node networks on one node (1,000 by default):
//     apply of the last ones, `network list`, `status` of all, a znetd
//     restart until every data plane is adopted, Pss per data plane and
//     the node's total.
//   - lab100: one network deployed over a --nodes-node lab (100 by
//     default): every pair handshaken after the apply returns, a new name
//     answering on every node, the CPU time the lab's processes used.
//
// Every figure is the median (or p50) of several rounds.
//
// Each part builds its own labs in temporary directories, named with a
// unique "zt" prefix, and removes them, checking that no namespace or
// process of them is left. Benchmarks report; they never fail on a number.
//
// It does not attach 1,000 real workloads for the DNS zone: the names are
// pushed to the resolver through its control socket, as znetd would after
// 1,000 attaches. The 1,000 members of the churn network are key-only
// members with no endpoint. The CPU time of lab100 counts only processes
// still running at the end (the lab's znetds and data planes), not the
// bench's own iperf3, dig or ip commands.
package bench
