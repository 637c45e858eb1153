// Package namespaces creates, opens, enters and deletes named Linux network
// namespaces (the /run/netns/NAME files that iproute2 also uses).
//
// Entering a namespace is always scoped: Do locks the calling goroutine to its
// OS thread, switches the thread, runs a function, switches back and only then
// unlocks. If switching back fails the thread stays locked, so the Go runtime
// retires it instead of reusing a thread that sits in a foreign namespace.
// Start forks a process from such a thread, so the whole child (every thread it
// will ever have) lives in the namespace from its first instruction.
//
// Names that znetd makes carry the node id verbatim (Name), so several daemons
// on one machine never collide and an operator can tell whose a namespace is.
//
// The package does not configure anything inside a namespace; links,
// addresses and routes are the callers' business (through netlink handles
// opened at a namespace's fd, not by switching threads).
package namespaces
