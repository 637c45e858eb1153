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
	mu      sync.Mutex
	closed  bool
	timers  map[*time.Timer]bool
	running sync.WaitGroup // raises that fired and have not returned
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
		live := s.timers[t] && !s.closed
		delete(s.timers, t)
		if live {
			s.running.Add(1)
		}
		s.mu.Unlock()
		if live {
			defer s.running.Done()
			fn()
		}
	})
	s.timers[t] = true
}

// stop cancels every pending raise, refuses new ones, and waits for those
// already running, so that none touches a backend closed after it.
func (s *staggered) stop() {
	s.mu.Lock()
	s.closed = true
	for t := range s.timers {
		t.Stop()
	}
	s.timers = nil
	s.mu.Unlock()
	s.running.Wait()
}

// raiseKeepalives gives the staggered peers of dev their keepalive, which
// starts this side's handshake if the other side's has not completed one.
// It does not take d.mu, so that it never waits behind a long apply: the
// configuration is UpdateOnly (a peer removed meanwhile stays removed) and
// sets only the keepalive. When it fails, the next apply reads the device
// and so sets what is missing. Two cases it gets wrong until the next apply,
// both harmless: a realize within the delay already set the keepalive (the
// stagger is then lost for that peer), or the peer became hidden meanwhile
// and keeps a keepalive towards the endpoint it was learned at. A device
// deleted meanwhile is no error.
func (d *Daemon) raiseKeepalives(dev overlay.Device, raise []wgtypes.PeerConfig) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := d.backend.Configure(ctx, dev, wgtypes.Config{Peers: raise})
	if err != nil && !errors.Is(err, overlay.ErrNotFound) {
		// The record of what the data plane was configured with has the
		// keepalives; the next apply must read the device to set them.
		d.realized.doubtDevice(dev.Network)
		d.log.Warn("starting staggered handshakes; the next apply sets the keepalives", "network", dev.Network, "ifname", dev.IfName, "peers", len(raise), "err", err)
	}
}

// Close stops the daemon's background work (the data planes' watchers,
// pending keepalive raises) and waits for it. The networks and their data
// planes keep running. Call it before closing the store and the backend,
// and without holding the daemon's lock.
func (d *Daemon) Close() {
	d.sup.close()
	d.resolverSup.close()
	d.later.stop()
}
