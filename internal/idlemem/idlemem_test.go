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
	var sink [][]byte
	for range 4 * heldLimit / (1 << 20) {
		sink = append(sink, make([]byte, 1<<20))
		sink = sink[len(sink)-1:] // the rest is garbage
	}
	var st runtime.MemStats
	runtime.ReadMemStats(&st)
	assert.Less(t, st.HeapAlloc, uint64(2*heldLimit), "garbage over the limit is collected while held")
	Release()
	assert.Equal(t, before, memLimit(), "released")
}

// TestReleaseAtFirstCycle checks that the collector stays held after the
// delay, with a limit above what the runtime holds, until a cycle runs,
// and that the cycle releases it.
func TestReleaseAtFirstCycle(t *testing.T) {
	debug.FreeOSMemory() // the garbage of the tests before, under heldLimit
	before := gogc(t)
	Hold()
	t.Cleanup(Release)
	ReleaseAtFirstCycle(100 * time.Millisecond)
	assert.Eventually(t, func() bool { return memLimit() != heldLimit }, 5*time.Second, 10*time.Millisecond,
		"the limit is set after the delay")
	assert.Equal(t, int64(-1), gogc(t), "still held after the delay")
	var st runtime.MemStats
	runtime.ReadMemStats(&st)
	assert.Greater(t, memLimit(), int64(st.Sys-st.HeapReleased), "garbage may still grow")
	assert.Eventually(t, func() bool {
		runtime.GC()
		return gogc(t) == before
	}, 5*time.Second, 50*time.Millisecond, "released by a cycle")
}
