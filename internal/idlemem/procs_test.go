package idlemem

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeProcs returns a Procs on the clock *now that counts its raises.
func fakeProcs(now *time.Duration, raises *atomic.Int32) *Procs {
	return &Procs{
		since: func(time.Time) time.Duration { return *now },
		raise: func() { raises.Add(1) },
	}
}

// batches calls p.Batch n times, the clock moving by step after each.
func batches(p *Procs, n int, now *time.Duration, step time.Duration) {
	for range n {
		p.Batch()
		*now += step
	}
}

// TestBatchRaisesWhenBusy checks that busyBatches batches within
// busyWindow, after a first busyBatches, raise once, and not before.
func TestBatchRaisesWhenBusy(t *testing.T) {
	var now time.Duration
	var raises atomic.Int32
	p := fakeProcs(&now, &raises)
	batches(p, 2*busyBatches-1, &now, time.Millisecond)
	assert.False(t, p.Raised(), "one batch short")
	batches(p, 1, &now, time.Millisecond)
	assert.True(t, p.Raised())
	batches(p, 4*busyBatches, &now, time.Microsecond)
	assert.Equal(t, int32(1), raises.Load(), "raised once")
}

// TestBatchIdleTrafficStays checks that batches slower than busyBatches
// per busyWindow (keepalives, handshakes) never raise, and that traffic
// that speeds up later does.
func TestBatchIdleTrafficStays(t *testing.T) {
	var now time.Duration
	var raises atomic.Int32
	p := fakeProcs(&now, &raises)
	step := busyWindow / busyBatches * 2 // half the rate
	batches(p, 10*busyBatches, &now, step)
	assert.False(t, p.Raised())
	assert.Zero(t, raises.Load())
	batches(p, busyBatches, &now, step/4)
	assert.True(t, p.Raised(), "twice the rate")
}

// TestBatchConcurrent checks that batches counted from many goroutines at
// once raise exactly once (run it with -race).
func TestBatchConcurrent(t *testing.T) {
	var raises atomic.Int32
	p := &Procs{start: time.Now(), since: time.Since, raise: func() { raises.Add(1) }}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 4 * busyBatches {
				p.Batch()
			}
		})
	}
	wg.Wait()
	assert.True(t, p.Raised())
	assert.Equal(t, int32(1), raises.Load())
}

// TestOneProc checks that a process started with OneProcEnv's variables
// goes back to the runtime's default GOMAXPROCS once busy and logs it
// once, and that any other process keeps its GOMAXPROCS and is told
// when busy all the same.
func TestOneProc(t *testing.T) {
	if _, pinned := os.LookupEnv("GOMAXPROCS"); pinned {
		t.Skip("GOMAXPROCS is set for this test run")
	}
	def := runtime.GOMAXPROCS(0)
	t.Cleanup(runtime.SetDefaultGOMAXPROCS)
	// Not started by OneProcEnv: GOMAXPROCS stays, busy is still told.
	runtime.GOMAXPROCS(def)
	var busy atomic.Int32
	other := OneProc(func() { busy.Add(1) })
	require.False(t, other.Raised())
	for range 4 * busyBatches {
		other.Batch()
	}
	assert.True(t, other.Raised())
	assert.Equal(t, int32(1), busy.Load(), "told once")
	assert.Equal(t, def, runtime.GOMAXPROCS(0), "left as it was")

	t.Setenv(oneProcVar, "1")
	runtime.GOMAXPROCS(1)
	var logged atomic.Int32
	p := OneProc(func() { logged.Add(1) })
	require.False(t, p.Raised())
	for range 4 * busyBatches {
		p.Batch()
	}
	assert.True(t, p.Raised())
	assert.Equal(t, def, runtime.GOMAXPROCS(0), "the runtime's default again")
	assert.Equal(t, int32(1), logged.Load())
}

// TestOneProcEnv checks that the data plane's environment asks for one P
// and no following of the CPU limit, keeping this process's own GODEBUG
// settings after (so theirs win), unless GOMAXPROCS is pinned, which it
// then inherits.
func TestOneProcEnv(t *testing.T) {
	if _, pinned := os.LookupEnv("GOMAXPROCS"); !pinned {
		t.Setenv("GODEBUG", "")
		assert.Equal(t, []string{"GOMAXPROCS=1", oneProcVar + "=1", "GODEBUG=updatemaxprocs=0"}, OneProcEnv())
		t.Setenv("GODEBUG", "madvdontneed=1")
		assert.Equal(t, []string{"GOMAXPROCS=1", oneProcVar + "=1", "GODEBUG=updatemaxprocs=0,madvdontneed=1"}, OneProcEnv())
	}
	t.Setenv("GOMAXPROCS", "3")
	assert.Empty(t, OneProcEnv(), "pinned")
}
