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
// control socket Path(network) returns.
type Sockets struct {
	Path func(network string) string
}

var _ dnsresolver.Client = Sockets{}

// Push implements dnsresolver.Client.
func (s Sockets) Push(ctx context.Context, network string, cfg dnsresolver.Config) error {
	return pushResolver(ctx, s.Path(network), cfg)
}

// Query implements dnsresolver.Client.
func (s Sockets) Query(ctx context.Context, network string) (dnsresolver.Stats, error) {
	return queryResolver(ctx, s.Path(network))
}
