package idlemem

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gogc returns the collector's current GOGC percent (-1: off).
func gogc(t *testing.T) int64 {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	require.Equal(t, metrics.KindUint64, s[0].Value.Kind())
	// The metric is a uint64 holding the int percent.
	return int64(s[0].Value.Uint64())
}

// TestHoldRelease checks that Hold turns the collector off, a second Hold
// keeps the first's setting, and Release restores it once.
func TestHoldRelease(t *testing.T) {
	before := gogc(t)
	require.Positive(t, before)
	Hold()
	Hold()
	assert.Equal(t, int64(-1), gogc(t), "held")
	Release()
	assert.Equal(t, before, gogc(t), "released")
	Release()
	assert.Equal(t, before, gogc(t), "a second Release changes nothing")
}

// memLimit returns the runtime's soft memory limit.
func memLimit() int64 { return debug.SetMemoryLimit(-1) }

// TestHeldWithALimit checks that a held collector still runs at heldLimit
// (a flood from the first second cannot grow the heap without bound) and
// that Release gives the limit back.
func TestHeldWithALimit(t *testing.T) {
	before := memLimit()
	Hold()
	assert.Equal(t, int64(heldLimit), memLimit(), "held")
	var st runtime.MemStats
	runtime.ReadMemStats(&st)
	cycles := st.NumGC
	for range 4 * heldLimit / (1 << 20) {
		sink = make([]byte, 1<<20) // the one before is garbage
	}
	// How far the heap overshoots the limit before a cycle catches up
	// depends on the pacer and the machine's load (once 203 MB): count
	// the cycles instead.
	runtime.ReadMemStats(&st)
	assert.GreaterOrEqual(t, st.NumGC-cycles, uint32(2), "garbage over the limit is collected while held")
	Release()
	assert.Equal(t, before, memLimit(), "released")
}

// TestBoundIdleGarbage checks that after the delay and firstGarbage of
// garbage the collector stays held with a limit of what the process holds
// plus idleGarbage, that
// garbage made then is collected within about that bound, over and over,
// with the limit renewed after each cycle, and that Release ends it.
func TestBoundIdleGarbage(t *testing.T) {
	debug.FreeOSMemory() // the garbage of the tests before
	before, beforeLimit := gogc(t), memLimit()
	Hold()
	t.Cleanup(Release)
	defer func(d, m time.Duration) { garbageCheck, garbageCheckMax = d, m }(garbageCheck, garbageCheckMax)
	garbageCheck, garbageCheckMax = 10*time.Millisecond, 40*time.Millisecond
	BoundIdleGarbage(100 * time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, int64(heldLimit), memLimit(), "not bounded before there is garbage")
	for range (firstGarbage / 256) + 1024 {
		sink = make([]byte, 256)
	}
	require.Eventually(t, func() bool { return memLimit() != heldLimit }, 5*time.Second, 10*time.Millisecond,
		"bounded once there is garbage")
	assert.Equal(t, int64(-1), gogc(t), "still held")
	first := memLimit()
	assert.Less(t, first, int64(heldLimit))

	var st runtime.MemStats
	runtime.ReadMemStats(&st)
	cycles := st.NumGC
	// 16 MiB of garbage, 256 bytes at a time, 8 KiB about every 50µs: an
	// idle process's garbage comes with its requests, so the renewal after
	// a cycle runs long before the next (a tight loop would outrun it and
	// the concurrent cycle both).
	for i := range 64 << 10 {
		sink = make([]byte, 256)
		if i%32 == 0 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	runtime.ReadMemStats(&st)
	assert.GreaterOrEqual(t, st.NumGC-cycles, uint32(8), "collected every ~idleGarbage")
	assert.Less(t, int64(st.HeapSys-st.HeapReleased), first+4*idleGarbage, "the heap did not grow with the garbage")
	assert.Equal(t, int64(-1), gogc(t), "still bounded")

	Release()
	assert.Equal(t, before, gogc(t), "released")
	assert.Equal(t, beforeLimit, memLimit())
}

// sink keeps the test's garbage from being optimised away.
var sink []byte

// TestHeldCollectorReleasedAtTheLimit checks that the cycle a held
// collector runs at heldLimit releases it: held, a live heap near the
// limit made the runtime collect cycle after cycle.
func TestHeldCollectorReleasedAtTheLimit(t *testing.T) {
	debug.FreeOSMemory() // the garbage of the tests before, under heldLimit
	before := gogc(t)
	Hold()
	t.Cleanup(Release)
	var sink [][]byte
	for range 2 * heldLimit / (1 << 20) {
		sink = append(sink, make([]byte, 1<<20))
		sink = sink[len(sink)-1:] // the rest is garbage
	}
	assert.Eventually(t, func() bool { return gogc(t) == before }, 5*time.Second, 10*time.Millisecond,
		"released by the cycle at the limit")
	assert.NotEqual(t, int64(heldLimit), memLimit(), "the limit given back")
}

// TestAnEarlierHoldsCycleReleasesNothing checks that a cycle after a Hold
// and Release leaves the next Hold held.
func TestAnEarlierHoldsCycleReleasesNothing(t *testing.T) {
	Hold()
	Release()
	Hold()
	t.Cleanup(Release)
	mu.Lock()
	holds++ // stands for a Hold and Release in between: the pending cleanup is an earlier Hold's
	mu.Unlock()
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond) // cleanups run on their own goroutine
	assert.Equal(t, int64(-1), gogc(t), "still held")
}

// TestACycleUnderALoweredLimitReleasesNothing checks that Hold's cycle
// releases nothing once the limit was set below heldLimit after the start
// (as BoundIdleGarbage does): that limit's setter ends the hold.
func TestACycleUnderALoweredLimitReleasesNothing(t *testing.T) {
	Hold()
	t.Cleanup(Release)
	mu.Lock()
	debug.SetMemoryLimit(heldLimit / 2)
	mu.Unlock()
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond) // cleanups run on their own goroutine
	assert.Equal(t, int64(-1), gogc(t), "still held")
}

// TestLooksAtTheHeapLessOften checks that a process that makes no garbage
// is looked at less and less often, down to one look a minute, and one
// whose heap grows every 5 s again.
func TestLooksAtTheHeapLessOften(t *testing.T) {
	var waits []time.Duration
	for w := garbageCheck; len(waits) < 8; w = nextLook(w, false, garbageCheck, garbageCheckMax) {
		waits = append(waits, w)
	}
	assert.Equal(t, []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second,
		time.Minute, time.Minute, time.Minute, time.Minute}, waits)
	assert.Equal(t, 5*time.Second, nextLook(time.Minute, true, garbageCheck, garbageCheckMax), "a heap that grew")
}

// TestBoundEndsWithItsHold checks that a bound's looks and renewals end
// with the Hold they were for: a later Hold (the next test's) is not
// bounded by them, and its own cycle at the limit still releases it.
func TestBoundEndsWithItsHold(t *testing.T) {
	defer func(d, m time.Duration) { garbageCheck, garbageCheckMax = d, m }(garbageCheck, garbageCheckMax)
	garbageCheck, garbageCheckMax = 10*time.Millisecond, 10*time.Millisecond
	Hold()
	BoundIdleGarbage(0)
	time.Sleep(30 * time.Millisecond) // its first look took the heap's base
	Release()
	Hold()
	t.Cleanup(Release)
	for range (firstGarbage / 256) + 1024 {
		sink = make([]byte, 256)
	}
	time.Sleep(100 * time.Millisecond) // ten looks
	assert.Equal(t, int64(heldLimit), memLimit(), "the earlier Hold's bound set a limit on this one")
}
