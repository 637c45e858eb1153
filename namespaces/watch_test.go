package namespaces

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/internal/testutil"
)

// watchFor returns a Watch of namespace name, closed in t.Cleanup.
func watchFor(t *testing.T, name string) *Watch {
	t.Helper()
	w, err := WatchGone(name)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, w.Close()) })
	return w
}

// waitWatch runs w.Wait with timeout and returns its error and how long it
// took.
func waitWatch(w *Watch, timeout time.Duration) (time.Duration, error) {
	return timed(timeout, w.Wait)
}

func TestWatchGone(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)

	t.Run("unused", func(t *testing.T) {
		name, id := createNS(t)
		w := watchFor(t, name)
		require.NoError(t, Delete(name))
		took, err := waitWatch(w, 20*time.Second)
		require.NoError(t, err)
		assert.Less(t, took, quick)
		pids, err := Holders(id)
		require.NoError(t, err)
		assert.Empty(t, pids)
	})

	t.Run("held by a process", func(t *testing.T) {
		name, _ := createNS(t)
		cmd := startSleeper(t, name)
		w := watchFor(t, name)
		require.NoError(t, Delete(name))

		took, err := waitWatch(w, 300*time.Millisecond)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorContains(t, err, strconv.Itoa(cmd.Process.Pid), "names the holder")
		assert.Less(t, took, 300*time.Millisecond+quick, "honours the deadline")

		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()
		took, err = waitWatch(w, 20*time.Second)
		require.NoError(t, err, "waits again after a deadline")
		assert.Less(t, took, quick)
	})

	// A socket made inside the namespace holds it, and /proc shows only
	// "socket:[N]": WaitGone returns while the namespace lives on, Wait
	// does not.
	t.Run("held by a socket made inside it", func(t *testing.T) {
		name, id := createNS(t)
		h, err := Open(name)
		require.NoError(t, err)
		var fd int
		require.NoError(t, Do(h, func() (err error) {
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			return err
		}))
		closed := false
		closeSock := func() {
			if !closed {
				closed = true
				assert.NoError(t, unix.Close(fd))
			}
		}
		t.Cleanup(closeSock)
		require.NoError(t, h.Close())
		w := watchFor(t, name)
		require.NoError(t, Delete(name))

		_, err = waitGone(id, 5*time.Second)
		require.NoError(t, err, "WaitGone does not see the socket")
		_, err = waitWatch(w, 300*time.Millisecond)
		require.ErrorIs(t, err, context.DeadlineExceeded, "the socket still holds the namespace")

		closeSock()
		_, err = waitWatch(w, 20*time.Second)
		require.NoError(t, err)
	})

	t.Run("another namespace freed", func(t *testing.T) {
		name, _ := createNS(t)
		startSleeper(t, name)
		w := watchFor(t, name)
		require.NoError(t, Delete(name))

		other, _ := createNS(t)
		ow := watchFor(t, other)
		require.NoError(t, Delete(other))
		_, err := waitWatch(ow, 20*time.Second)
		require.NoError(t, err)

		_, err = waitWatch(w, 300*time.Millisecond)
		require.ErrorIs(t, err, context.DeadlineExceeded, "another's RTM_DELNSID is not ours")
	})

	t.Run("cancelled", func(t *testing.T) {
		name, _ := createNS(t)
		startSleeper(t, name)
		w := watchFor(t, name)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, w.Wait(ctx), context.Canceled)
	})

	t.Run("closed twice", func(t *testing.T) {
		name, _ := createNS(t)
		w, err := WatchGone(name)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		require.NoError(t, w.Close())
	})

	t.Run("missing", func(t *testing.T) {
		_, err := WatchGone(newName(t))
		require.Error(t, err)
	})
}

// TestLookup finds a namespace's name by its number, only among the names
// with the prefix; a plain file is never taken for a namespace.
func TestLookup(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	name, id := createNS(t)
	got, err := Lookup("zt-ns-", id.Ino)
	require.NoError(t, err)
	assert.Equal(t, name, got)
	got, err = Lookup("zt-other-", id.Ino)
	require.NoError(t, err)
	assert.Empty(t, got, "another prefix")

	own, err := ID("/proc/self/ns/net")
	require.NoError(t, err)
	got, err = Lookup("", own)
	require.NoError(t, err)
	assert.Empty(t, got, "the test's own namespace has no name in Dir")
}
