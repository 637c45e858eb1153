package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/znet/znet/store"
)

// The restart policy of a data plane that dies: the first death after a
// stable run is restarted at once (traffic is back within about a second);
// one that keeps dying waits restartMin, doubling up to restartMax, so a
// data plane that cannot run costs a restart a minute, not a tight loop.
const (
	restartMin = time.Second
	restartMax = time.Minute
	// stableAfter is how long a data plane must run before its death
	// counts as a first one again.
	stableAfter = 2 * time.Minute
)

// backoff counts the quick deaths in a row of one network's data plane.
type backoff struct {
	streak int
}

// next returns how long to wait before restarting a data plane that died
// after running for up (0 for a restart that failed).
func (b *backoff) next(up time.Duration) time.Duration {
	if up >= stableAfter {
		b.streak = 0
	}
	b.streak++
	if b.streak == 1 {
		return 0
	}
	d := restartMin
	for i := 2; i < b.streak && d < restartMax; i++ {
		d *= 2
	}
	return min(d, restartMax)
}

// Health is what the supervisor knows of one network's data plane since
// znetd started.
type Health struct {
	// Restarts is how many times the data plane was restarted after it
	// died.
	Restarts int
	// LastExit says how it last died ("killed by signal 9 (killed)");
	// LastExitAt when it was noticed. Empty and zero when it never died.
	LastExit   string
	LastExitAt time.Time
	// NextRestart is when the next restart is due while the supervisor
	// waits out its backoff; zero otherwise.
	NextRestart time.Time
	// RestartError is why the last restart failed; "" after a good one.
	RestartError string
}

// supervisor watches the data plane of every network and restarts one
// that dies. Its functions come from the daemon (tests give fakes):
//
//   - wait blocks until data plane pid of network exits, and says how;
//   - current returns the pid that runs for network now, under the
//     daemon's lock, so a replacement made by an apply is not taken for a
//     death;
//   - restart realizes network again and returns the new pid; when it
//     fails, the pid of the data plane it left running (0 for none), so
//     that a half-done restart is not taken for one an apply made.
//
// Each watched network has one goroutine; stop and close cancel them,
// close waits for them.
type supervisor struct {
	wait    func(ctx context.Context, network string, pid int) (string, error)
	current func(ctx context.Context, network string) int
	restart func(ctx context.Context, network string) (int, error)
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
	log     *slog.Logger
	// what names the processes watched in the log: "data plane", or
	// "resolver" for the resolver-only processes.
	what string

	mu      sync.Mutex
	closed  bool
	watches map[string]*watch // by network
	running sync.WaitGroup
}

// watch is one network's watcher; its fields but cancel are guarded by
// supervisor.mu.
type watch struct {
	cancel  context.CancelFunc
	pid     int       // the data plane to wait for
	since   time.Time // when pid was first watched
	backoff backoff
	health  Health
}

func newSupervisor(log *slog.Logger) *supervisor {
	return &supervisor{
		now:     time.Now,
		sleep:   sleepCtx,
		log:     log,
		what:    "data plane",
		watches: map[string]*watch{},
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watch makes the supervisor watch data plane pid of network, starting a
// watcher if network has none; pid 0 (no process) is not watched.
func (s *supervisor) watch(network string, pid int) {
	if pid == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if w := s.watches[network]; w != nil {
		if w.pid != pid {
			w.pid, w.since = pid, s.now()
		}
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watch{cancel: cancel, pid: pid, since: s.now()}
	s.watches[network] = w
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		s.run(ctx, network, w)
	}()
}

// stop stops watching network, before it is deleted on purpose. It does
// not wait: its caller holds the daemon's lock, which a watcher may be
// waiting for (and will then find its context cancelled).
func (s *supervisor) stop(network string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.watches[network]; w != nil {
		w.cancel()
		delete(s.watches, network)
	}
}

// close stops every watcher and waits for them; the data planes keep
// running. It is safe to call twice.
func (s *supervisor) close() {
	s.mu.Lock()
	s.closed = true
	for name, w := range s.watches {
		w.cancel()
		delete(s.watches, name)
	}
	s.mu.Unlock()
	s.running.Wait()
}

// health returns network's record; ok is false when it is not watched.
func (s *supervisor) health(network string) (Health, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.watches[network]
	if w == nil {
		return Health{}, false
	}
	return w.health, true
}

// run waits for w's data plane to die and restarts it, until ctx ends.
func (s *supervisor) run(ctx context.Context, network string, w *watch) {
	for {
		s.mu.Lock()
		pid := w.pid
		s.mu.Unlock()
		reason, err := s.wait(ctx, network, pid)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// Not a death: the watch itself failed. Look again later.
			s.log.Warn("watching the "+s.what, "network", network, "pid", pid, "err", err)
			if s.sleep(ctx, restartMin) != nil {
				return
			}
			continue
		}
		if cur := s.current(ctx, network); cur != 0 && cur != pid {
			// An apply replaced it on purpose: watch the new one.
			s.mu.Lock()
			if w.pid == pid {
				w.pid, w.since = cur, s.now()
			}
			s.mu.Unlock()
			continue
		}
		if !s.revive(ctx, network, w, pid, reason) {
			return
		}
	}
}

// revive records the death of data plane pid and restarts it, waiting out
// the backoff before each try, until a restart works (true) or ctx ends.
func (s *supervisor) revive(ctx context.Context, network string, w *watch, pid int, reason string) bool {
	s.mu.Lock()
	now := s.now()
	delay := w.backoff.next(now.Sub(w.since))
	w.health.LastExit, w.health.LastExitAt = reason, now
	s.mu.Unlock()
	s.log.Warn(s.what+" died", "network", network, "pid", pid, "how", reason, "restart_in", delay)
	for {
		if delay > 0 {
			s.mu.Lock()
			w.health.NextRestart = s.now().Add(delay)
			s.mu.Unlock()
			if s.sleep(ctx, delay) != nil {
				return false
			}
			if cur := s.current(ctx, network); cur != 0 && cur != pid {
				// An apply meanwhile started one: follow it, uncounted.
				s.mu.Lock()
				w.health.NextRestart = time.Time{}
				w.pid, w.since = cur, s.now()
				s.mu.Unlock()
				return true
			}
		}
		newPID, err := s.restart(ctx, network)
		if ctx.Err() != nil {
			return false
		}
		s.mu.Lock()
		w.health.NextRestart = time.Time{}
		if err != nil {
			if newPID != 0 {
				pid = newPID // ours, unfinished: restart it again
			}
			w.health.RestartError = err.Error()
			delay = w.backoff.next(0)
			s.mu.Unlock()
			s.log.Error("restarting the "+s.what, "network", network, "err", err, "retry_in", delay)
			continue
		}
		w.health.Restarts++
		w.health.RestartError = ""
		w.pid, w.since = newPID, s.now()
		restarts := w.health.Restarts
		s.mu.Unlock()
		s.log.Info("restarted the "+s.what, "network", network, "pid", newPID, "restarts", restarts)
		return true
	}
}

// DataplaneHealth returns what znetd knows of network's data plane
// (restarts, last death) without asking the data plane, so it never
// blocks; ok is false when none is watched (not applied, kernel backend).
func (d *Daemon) DataplaneHealth(network string) (h Health, ok bool) {
	return d.sup.health(network)
}

// waitDataplane is the supervisor's wait: the backend's.
func (d *Daemon) waitDataplane(ctx context.Context, network string, pid int) (string, error) {
	return d.backend.Wait(ctx, d.device(network, 0), pid)
}

// currentDataplane is the supervisor's current: the pid that runs now,
// read under the daemon's lock so that an apply in progress finishes first.
func (d *Daemon) currentDataplane(ctx context.Context, network string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.backend.PID(d.device(network, 0))
}

// loadApplied loads an applied network for a restart, under the daemon's
// lock; a ctx that ended while the caller waited for the lock means the
// network was deleted meanwhile.
func (d *Daemon) loadApplied(ctx context.Context, network string) (*store.Network, []*store.Workload, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	n, wls, err := d.loadNetwork(network)
	if err != nil {
		return nil, nil, err
	}
	if n.Spec == nil {
		return nil, nil, fmt.Errorf("network %s has no applied spec", network)
	}
	return n, wls, nil
}

// restartDataplane is the supervisor's restart: it realizes network again
// from the state, which starts a new data plane with the same key, port,
// peers, routes, firewall and DNS records, and returns its pid (on
// failure, the pid of whatever data plane realize left running).
func (d *Daemon) restartDataplane(ctx context.Context, network string) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, wls, err := d.loadApplied(ctx, network)
	if err != nil {
		return 0, err
	}
	acc, err := d.access(network)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, mutationTimeout)
	defer cancel()
	d.realized.forget(network) // a new device: look at everything
	err = d.realize(ctx, n, n.Spec, wls, acc)
	// On failure too: it may have started a data plane before it failed.
	return d.backend.PID(d.device(network, n.Spec.MTU)), err
}
