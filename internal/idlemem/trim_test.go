package idlemem

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingTrimmer returns a Trimmer of delay d that counts its trims
// instead of running them.
func countingTrimmer(d time.Duration) (*Trimmer, *atomic.Int32) {
	var n atomic.Int32
	t := NewTrimmer(d)
	t.trim = func() { n.Add(1) }
	return t, &n
}

// TestTrimOncePerBurst checks that a burst of requests makes one trim,
// delay after its first request, and that a later burst makes another.
func TestTrimOncePerBurst(t *testing.T) {
	tr, n := countingTrimmer(50 * time.Millisecond)
	for range 10 {
		tr.Touch()
	}
	assert.Zero(t, n.Load(), "no trim before the delay")
	require.Eventually(t, func() bool { return n.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(150 * time.Millisecond)
	assert.Equal(t, int32(1), n.Load(), "one trim per burst")
	tr.Touch()
	require.Eventually(t, func() bool { return n.Load() == 2 }, 5*time.Second, 5*time.Millisecond)
}

// TestTrimSkippedWhileHeld checks that no trim runs while the collector is
// held (a start in progress), and that a request after the release trims.
func TestTrimSkippedWhileHeld(t *testing.T) {
	Hold()
	t.Cleanup(Release)
	tr, n := countingTrimmer(10 * time.Millisecond)
	tr.Touch()
	time.Sleep(100 * time.Millisecond)
	assert.Zero(t, n.Load(), "trimmed while held")
	Release()
	tr.Touch()
	require.Eventually(t, func() bool { return n.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
}

// TestTrimListener checks that an accepted connection touches the
// Trimmer and that errors pass unchanged.
func TestTrimListener(t *testing.T) {
	tr, n := countingTrimmer(10 * time.Millisecond)
	inner, err := net.Listen("unix", t.TempDir()+"/s")
	require.NoError(t, err)
	l := tr.Listener(inner)
	c, err := net.Dial("unix", inner.Addr().String())
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	s, err := l.Accept()
	require.NoError(t, err)
	_ = s.Close()
	require.Eventually(t, func() bool { return n.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, l.Close())
	_, err = l.Accept()
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.Equal(t, int32(1), n.Load(), "a failed Accept does not touch")
}
