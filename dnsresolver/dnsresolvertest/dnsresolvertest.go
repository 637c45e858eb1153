// Package dnsresolvertest provides a fake dnsresolver.Client for the unit
// tests of its users (the daemon): it records every config pushed and
// answers queries with stats the test sets.
package dnsresolvertest

import (
	"context"
	"slices"
	"sync"

	"github.com/znet/znet/dnsresolver"
)

// Push is one recorded push.
type Push struct {
	Network string
	Config  dnsresolver.Config
}

// Client is a fake dnsresolver.Client, safe for concurrent use. The zero
// value is ready.
type Client struct {
	mu     sync.Mutex
	pushes []Push
	stats  map[string]dnsresolver.Stats
	err    error
}

var _ dnsresolver.Client = (*Client)(nil)

// Push records the push and returns the error set by Fail, if any.
func (c *Client) Push(_ context.Context, network string, cfg dnsresolver.Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pushes = append(c.pushes, Push{Network: network, Config: cfg})
	return c.err
}

// Query returns the stats SetStats gave network (zero if none), or the
// error set by Fail.
func (c *Client) Query(_ context.Context, network string) (dnsresolver.Stats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return dnsresolver.Stats{}, c.err
	}
	return c.stats[network], nil
}

// SetStats makes Query of network return st.
func (c *Client) SetStats(network string, st dnsresolver.Stats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stats == nil {
		c.stats = map[string]dnsresolver.Stats{}
	}
	c.stats[network] = st
}

// Fail makes every later Push and Query fail with err (nil: succeed).
func (c *Client) Fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

// Pushes returns the pushes so far, oldest first.
func (c *Client) Pushes() []Push {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pushes)
}

// Last returns the last config pushed to network, and whether there was
// one.
func (c *Client) Last(network string) (dnsresolver.Config, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.pushes) - 1; i >= 0; i-- {
		if c.pushes[i].Network == network {
			return c.pushes[i].Config, true
		}
	}
	return dnsresolver.Config{}, false
}
