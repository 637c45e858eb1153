package dnsresolver

import "context"

// Client configures and reads the resolvers of this node's networks, one
// network at a time, wherever each runs (package dnsclient speaks to their
// control sockets; package dnsresolvertest is a fake for tests). It must be
// safe for concurrent use.
type Client interface {
	// Push sends network's resolver its whole config.
	Push(ctx context.Context, network string, cfg Config) error
	// Query returns what network's resolver holds and has answered.
	Query(ctx context.Context, network string) (Stats, error)
}
