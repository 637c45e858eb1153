// Package ipam manages a network's address space: it plans which slice of a
// network's range each node owns (PlanSubnet, DefaultSubnetBits), derives a
// node's IPv4 subnet, its IPv6 /64 twin and their gateways (NodeSubnets), and
// hands out the IPv4 host addresses of one node's subnet to workloads and
// access peers (Allocator). A host's IPv6 address is never allocated on its
// own: it is the twin of its IPv4 address (Subnets.Twin).
//
// An Allocator never hands out the network address, the gateway (first host)
// or the broadcast address. It gives out never-used addresses first, in
// ascending order, and reuses released addresses only after those run out,
// oldest release first, so an address that was just freed is not handed to the
// next workload while peers may still hold state (DNS caches, conntrack) for
// the old one. Its memory grows with the addresses in use, not with the size
// of the subnet.
//
// The package does no I/O and takes no locks: the daemon serialises an
// Allocator with MarshalJSON/UnmarshalJSON inside its own database
// transactions and holds the lock that guards it. It does not know what an
// owner string means.
package ipam
