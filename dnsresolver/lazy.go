package dnsresolver

import (
	"log/slog"
	"sync"
)

// Controller is what the control socket drives: a *Resolver, or a Lazy one.
type Controller interface {
	Update(cfg Config) error
	Stats() Stats
}

var (
	_ Controller = (*Resolver)(nil)
	_ Controller = (*Lazy)(nil)
)

// Lazy is a Controller that starts its Resolver at the first Update: a
// network's data plane learns its gateways and records only when znetd
// pushes them. Safe for concurrent use.
type Lazy struct {
	log  *slog.Logger
	opts Options

	mu sync.Mutex
	r  *Resolver // nil until the first good Update
}

// NewLazy returns a Lazy that will start a resolver with opts.
func NewLazy(log *slog.Logger, opts Options) *Lazy { return &Lazy{log: log, opts: opts} }

// Update starts the resolver with cfg, or updates the running one.
func (l *Lazy) Update(cfg Config) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r != nil {
		return l.r.Update(cfg)
	}
	return l.startLocked(cfg)
}

// startLocked starts the resolver with cfg.
func (l *Lazy) startLocked(cfg Config) error {
	r, err := NewWithOptions(cfg, l.log, l.opts)
	if err != nil {
		return err
	}
	l.r = r
	return nil
}

// Stats returns the running resolver's stats (zero before it started).
func (l *Lazy) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r == nil {
		return Stats{}
	}
	return l.r.Stats()
}

// Close stops the resolver if it runs; safe twice.
func (l *Lazy) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r == nil {
		return nil
	}
	return l.r.Close()
}
