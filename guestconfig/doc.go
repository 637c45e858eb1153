// Package guestconfig renders what a VM's guest needs to join a network
// through its tap workload as cloud-init network-config version 2: the NIC
// matched by its MAC, its static addresses, routes to the network's ranges
// via the gateways, the resolver and search domain, and the MTU. A VM has
// no DHCP client to rely on (znet runs no DHCP server), so this and the
// attach answer are the whole of its configuration.
//
// It is a pure function of an api.Attachment; fetching it is the caller's.
package guestconfig
