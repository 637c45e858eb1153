package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
)

func TestBackoff(t *testing.T) {
	var b backoff
	var got []time.Duration
	for range 9 {
		got = append(got, b.next(time.Second))
	}
	s := time.Second
	assert.Equal(t, []time.Duration{0, s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, time.Minute, time.Minute}, got,
		"quick deaths: at once, then 1 s doubling up to a minute")
	assert.Zero(t, b.next(stableAfter), "a death after a stable run is restarted at once")
	assert.Equal(t, time.Second, b.next(0), "and the next quick one waits again")
}

// fakePlanes drives a supervisor without a kernel: data planes are pids
// that die when told, restarts give new pids or fail when told, and time
// is a fake clock that the backoff's sleeps advance.
type fakePlanes struct {
	mu       sync.Mutex
	now      time.Time
	pid      int
	dead     map[int]chan struct{}
	replaced int // a pid current reports, as if an apply replaced it
	fails    int // restarts that fail next
	sleeps   []time.Duration
	restarts []int // the pids restarts started
	started  chan int
}

func newFakePlanes() *fakePlanes {
	return &fakePlanes{now: time.Unix(1000, 0), pid: 100, dead: map[int]chan struct{}{}, started: make(chan int, 100)}
}

func (f *fakePlanes) ch(pid int) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead[pid] == nil {
		f.dead[pid] = make(chan struct{})
	}
	return f.dead[pid]
}

func (f *fakePlanes) kill(pid int) { close(f.ch(pid)) }

func (f *fakePlanes) supervisor(t *testing.T) *supervisor {
	s := newSupervisor(slog.New(slog.DiscardHandler))
	s.now = func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
	s.sleep = func(ctx context.Context, d time.Duration) error {
		f.mu.Lock()
		f.sleeps = append(f.sleeps, d)
		f.now = f.now.Add(d)
		f.mu.Unlock()
		return ctx.Err()
	}
	s.wait = func(ctx context.Context, _ string, pid int) (string, error) {
		select {
		case <-f.ch(pid):
			return "killed by signal 9 (killed)", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	s.current = func(context.Context, string) int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.replaced
	}
	s.restart = func(ctx context.Context, _ string) (int, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.fails > 0 {
			f.fails--
			return 0, errors.New("namespace busy")
		}
		f.pid++
		f.restarts = append(f.restarts, f.pid)
		f.started <- f.pid
		return f.pid, nil
	}
	t.Cleanup(s.close)
	return s
}

// next waits for the next restart and returns its pid.
func (f *fakePlanes) next(t *testing.T) int {
	t.Helper()
	select {
	case pid := <-f.started:
		return pid
	case <-time.After(5 * time.Second):
		t.Fatal("no restart")
		return 0
	}
}

func TestSupervisorRestartsWithBackoff(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	f := newFakePlanes()
	s := f.supervisor(t)
	s.watch("shop", 100)

	pid := 100
	for range 4 {
		f.kill(pid)
		pid = f.next(t)
	}
	h, ok := s.health("shop")
	require.True(t, ok)
	assert.Equal(t, 4, h.Restarts)
	assert.Equal(t, "killed by signal 9 (killed)", h.LastExit)
	f.mu.Lock()
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, f.sleeps,
		"the first death is restarted at once, the next ones back off")
	f.sleeps = nil
	// A restart that fails is retried, backing off further, and reported.
	f.fails = 2
	f.mu.Unlock()
	f.kill(pid)
	pid = f.next(t)
	f.mu.Lock()
	assert.Equal(t, []time.Duration{8 * time.Second, 16 * time.Second, 32 * time.Second}, f.sleeps)
	f.sleeps = nil
	f.mu.Unlock()
	// After a stable run, a death is restarted at once again. (The run
	// starts when the supervisor has counted the restart.)
	require.Eventually(t, func() bool { h, _ := s.health("shop"); return h.Restarts == 5 }, 5*time.Second, time.Millisecond)
	f.mu.Lock()
	f.now = f.now.Add(stableAfter)
	f.mu.Unlock()
	f.kill(pid)
	f.next(t)
	f.mu.Lock()
	assert.Empty(t, f.sleeps)
	f.mu.Unlock()
	h, _ = s.health("shop")
	assert.Equal(t, 6, h.Restarts)
	assert.Empty(t, h.RestartError, "the last restart worked")
}

func TestSupervisorLeavesDeliberateStops(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	f := newFakePlanes()
	s := f.supervisor(t)

	t.Run("replaced by an apply", func(t *testing.T) {
		s.watch("shop", 100)
		f.mu.Lock()
		f.replaced = 200
		f.mu.Unlock()
		f.kill(100)
		// The watcher follows pid 200 without a restart: killing it now is
		// a death.
		require.Eventually(t, func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.watches["shop"].pid == 200
		}, 5*time.Second, time.Millisecond)
		h, _ := s.health("shop")
		assert.Zero(t, h.Restarts)
		f.mu.Lock()
		f.replaced = 0
		f.mu.Unlock()
		f.kill(200)
		f.next(t)
		h, _ = s.health("shop")
		assert.Equal(t, 1, h.Restarts)
	})

	t.Run("stopped before a delete", func(t *testing.T) {
		s.watch("gone", 300)
		s.stop("gone")
		f.kill(300)
		_, ok := s.health("gone")
		assert.False(t, ok)
		select {
		case pid := <-f.started:
			t.Fatalf("restarted a data plane stopped on purpose: %d", pid)
		case <-time.After(100 * time.Millisecond):
		}
	})

	t.Run("closed with the daemon", func(t *testing.T) {
		s.watch("other", 400)
		s.close()
		f.kill(400)
		s.watch("late", 500) // refused after close: no goroutine left behind
		select {
		case pid := <-f.started:
			t.Fatalf("restarted after close: %d", pid)
		case <-time.After(100 * time.Millisecond):
		}
	})
}

// TestSupervisorRetriesAHalfDoneRestart fails a restart after it started
// a data plane (realize started one, then failed to configure it): the
// supervisor must not take that one for a data plane an apply started,
// and restarts again after the backoff.
func TestSupervisorRetriesAHalfDoneRestart(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	f := newFakePlanes()
	s := f.supervisor(t)
	restart := s.restart
	failed := false
	s.restart = func(ctx context.Context, network string) (int, error) {
		f.mu.Lock()
		first := !failed
		failed = true
		if first {
			f.replaced = 150 // left running, unconfigured
		}
		f.mu.Unlock()
		if first {
			return 150, errors.New("configuring the device: no answer")
		}
		return restart(ctx, network)
	}
	s.watch("shop", 100)
	f.kill(100)
	pid := f.next(t)
	assert.Equal(t, 101, pid, "restarted again")
	h, _ := s.health("shop")
	assert.Equal(t, 1, h.Restarts)
	assert.Empty(t, h.RestartError)
}
