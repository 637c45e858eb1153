package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/znet/znet/overlay"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// staggered runs the delayed keepalive raises of peers.Stagger and stops
// the pending ones when the daemon closes.
type staggered struct {
	mu     sync.Mutex
	closed bool
	timers map[*time.Timer]bool
}

// after runs fn after delay unless the daemon is closed first.
func (s *staggered) after(delay time.Duration, fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.timers == nil {
		s.timers = map[*time.Timer]bool{}
	}
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		s.mu.Lock()
		live := s.timers[t]
		delete(s.timers, t)
		s.mu.Unlock()
		if live {
			fn()
		}
	})
	s.timers[t] = true
}

// stop cancels every pending raise and refuses new ones.
func (s *staggered) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for t := range s.timers {
		t.Stop()
	}
	s.timers = nil
}

// raiseKeepalives gives the staggered peers of dev their keepalive, which
// starts this side's handshake if the other side's has not completed one.
// It does not take d.mu: the configuration is UpdateOnly and sets only the
// keepalive every peer with an endpoint has anyway, so it cannot undo a
// change made meanwhile nor bring back a removed peer. A device deleted
// meanwhile is no error.
func (d *Daemon) raiseKeepalives(dev overlay.Device, raise []wgtypes.PeerConfig) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := d.backend.Configure(ctx, dev, wgtypes.Config{Peers: raise})
	if err != nil && !errors.Is(err, overlay.ErrNotFound) {
		d.log.Warn("starting staggered handshakes", "ifname", dev.IfName, "peers", len(raise), "err", err)
	}
}

// Close stops the daemon's background work (pending keepalive raises). The
// networks and their data planes keep running. Call it before closing the
// store.
func (d *Daemon) Close() {
	d.later.stop()
}
