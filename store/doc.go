// Package store keeps a node's state in one bbolt file: the networks it has
// reserved or applied (spec, key, port, address allocator) and their
// workloads. Every change is one transaction, so a crash leaves either the
// old state or the new one.
//
// The store knows nothing of kernel objects; the daemon makes them match.
// The file holds private keys and is created with mode 0600.
package store
