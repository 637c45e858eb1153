package idlemem

import (
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

// sink keeps allocations from being optimized away.
var sink []byte

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

// TestReleaseAfterAllocating checks that the collector stays held while
// the process allocates less than the budget and comes back once it
// allocated more.
func TestReleaseAfterAllocating(t *testing.T) {
	before := gogc(t)
	Hold()
	t.Cleanup(Release)
	ReleaseAfterAllocating(4<<20, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, int64(-1), gogc(t), "still held: nothing allocated")
	for range 8 {
		sink = make([]byte, 1<<20)
	}
	assert.Eventually(t, func() bool { return gogc(t) == before }, 5*time.Second, 10*time.Millisecond,
		"released after 8 MiB")
}
