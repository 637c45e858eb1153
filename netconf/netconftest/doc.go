// Package netconftest is a fake netconf.Host that keeps each namespace's
// links, addresses, routes, proxy neighbours, sysctls and firewall in
// memory and renders them as text, and can be told to fail an operation:
// enough to test what a caller asks of the kernel, and what it does when
// the kernel refuses, without root.
//
// It models no kernel behaviour beyond that: a link made by another
// component (an overlay device) springs into being at its first SetLink,
// routes need no address, and the firewall's rules are kept, not checked.
package netconftest
