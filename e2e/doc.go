// Package e2e holds znet's end-to-end tests: simulated nodes (lab) in
// network namespaces, one real znetd process per node, driven only through
// the znet CLI and checked with real tools (ping, wg, ...). They need root
// and skip without it.
package e2e
