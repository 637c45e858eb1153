// Package bench measures znet on this machine (issue 6) and sets the
// figures beside their goals: the data plane against bare wireguard-go
// (the same library in a small program, and Debian's wireguard-go binary)
// and a raw veth, measured in the same run with the contenders alternating;
// and the control plane (network apply, workload attach, resident memory
// per idle network). Every figure is the median of several rounds.
//
// Each part builds its own lab in a temporary directory, named with a
// unique "zt" prefix, and removes it, checking that no namespace or process
// of it is left. Benchmarks report; they never fail on a number.
//
// It leaves out the DNS figures (dnsperf against the resolver and NSD),
// adding and removing a peer on a 1,000-peer network, the 20-node deploy
// and propagation of a new name: those rows say "not measured".
package bench
