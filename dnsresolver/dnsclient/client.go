// Package dnsclient is the dnsresolver.Client of znetd: it speaks to each
// network's resolver over its control socket, in the current protocol or,
// for a data plane started by an older znetd, in the HTTP one. It is apart
// from dnsresolver so that data planes, which link dnsresolver, do not
// link net/http.
package dnsclient

import (
	"context"

	"github.com/znet/znet/dnsresolver"
)

// Sockets is a dnsresolver.Client that finds a network's resolver at the
// control socket Path(network) returns. It remembers what each resolver
// holds, so that a push sends only the change; Forget drops that when the
// network goes. Use it by pointer: it must not be copied.
type Sockets struct {
	Path func(network string) string

	pushes dnsresolver.Pushes
}

var _ dnsresolver.Client = (*Sockets)(nil)

// Push implements dnsresolver.Client.
func (s *Sockets) Push(ctx context.Context, network string, cfg dnsresolver.Config) error {
	return pushResolver(ctx, &s.pushes, s.Path(network), cfg)
}

// Forget drops what was pushed to network's resolver (its network was
// deleted, or its resolver is gone): the next push sends the whole config.
func (s *Sockets) Forget(network string) {
	s.pushes.Forget(s.Path(network))
}

// Query implements dnsresolver.Client.
func (s *Sockets) Query(ctx context.Context, network string) (dnsresolver.Stats, error) {
	return queryResolver(ctx, s.Path(network))
}
