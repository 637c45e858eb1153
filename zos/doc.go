// Package zos reads the network workloads that Zero-OS (zos) hands a node
// and turns each into a znet network spec for that node.
//
// zos sends a node its part of a network as a workload
// {"version","name","type":"network","data":{...}} keyed by the owner's
// twin id; its client plans everything in it: the node's subnet, its
// WireGuard private key and port, its peers with the AllowedIPs each gets
// (which is how an access node relays for hidden nodes and for users), and
// the 100.64.<o2>.<o3> link addresses users' WireGuard configs route. The
// package has its own types mirroring that JSON (it does not import zos).
//
// Decode parses a workload strictly; Translate checks it and returns the
// spec (peers with verbatim AllowedIPs, the node's link address) and the
// imported key and port the daemon must use. Every refusal is a
// *spec.FieldError naming the workload's field ("data.peers[1].subnet")
// and the reason; a private key is never part of a message. zos itself
// checks little beyond non-empty fields; this package refuses what would
// break the network: prefixes that do not parse, allowed IPs outside the
// range and 100.64.0.0/16, subnets outside the range or overlapping,
// malformed or repeated keys.
//
// Left out: talking to zos, mycelium (refused unless null), and the
// zmachine interfaces (attach a workload to the network instead).
package zos
