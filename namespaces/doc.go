// Package namespaces creates, opens, enters and deletes named Linux network
// namespaces (the /run/netns/NAME files that iproute2 also uses), and tells
// when a deleted namespace is really gone.
//
// Entering a namespace is always scoped: Do runs a function on a fresh
// goroutine locked to its OS thread, switches the thread, runs the function,
// switches back and only then unlocks. If switching back fails the thread
// stays locked, so the Go runtime retires it instead of reusing a thread that
// sits in a foreign namespace. Start forks a process from such a thread, so
// the whole child (every thread it will ever have) lives in the namespace
// from its first instruction.
//
// Delete only removes the name; the kernel frees the namespace when the last
// process, thread or fd holding it is gone. ID, Holders and WaitGone find
// those holders through /proc, for error messages, leak checks and a delete
// that waits until the namespace is gone. The kernel reuses a freed
// namespace's number (ID) at once, so WaitGone takes an Ident (Identify),
// which adds the never-reused netns cookie.
//
// Names that znetd makes carry the node id verbatim (Name), so several daemons
// on one machine never collide and an operator can tell whose a namespace is.
//
// The package does not configure anything inside a namespace; links,
// addresses and routes are the callers' business (through netlink handles
// opened at a namespace's fd, not by switching threads). It does not create
// other namespace types, and Create and Delete serialise only within one
// process: two processes making the same name at once are not supported.
package namespaces
