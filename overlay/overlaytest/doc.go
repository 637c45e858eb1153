// Package overlaytest provides an in-memory overlay.Backend for the unit
// tests of its users (the daemon): it keeps devices, keys and peers in maps,
// records every call and can be told to fail. It touches no kernel object
// and runs no process, so it does not check namespaces or handshakes.
package overlaytest
