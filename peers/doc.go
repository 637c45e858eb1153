// Package peers turns a network spec into the WireGuard peers one node must
// have (Desired), computes the smallest wgctrl configuration that turns the
// device's current peers into those (Diff), and the routes through the
// WireGuard device that follow from them (Routes, RouteDiff).
//
// Every member with an endpoint is public, every member without one is
// hidden. A public node peers with every other member; a hidden node peers
// only with the public members, and reaches the other hidden members through
// the relay (Relay), whose AllowedIPs on the hidden node carry their subnets.
//
// Diff never replaces the whole peer list and never mentions a peer that is
// already right, so applying a new spec leaves healthy sessions alone.
//
// The package is pure logic: it does not talk to a device, set routes or look
// up host names itself (the caller passes a Resolver). Checks of the spec as a
// document (field formats, overlapping subnets) belong to package spec; checks
// against the node's own state (its reserved key and port) to the daemon.
package peers
