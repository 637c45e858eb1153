package namespaces

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
)

func TestID(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	name, id := createNS(t)

	byPath, err := ID(Path(name))
	require.NoError(t, err)
	assert.Equal(t, id.Ino, byPath, "by name and by path")

	own, err := ID("/proc/self/ns/net")
	require.NoError(t, err)
	assert.Equal(t, ownNS(t), fmt.Sprintf("net:[%d]", own), "the number in the ns link")
}

// startSleeper starts `sleep 30` in the namespace name and kills it (by pid)
// in t.Cleanup unless the test did.
func startSleeper(t *testing.T, name string) *exec.Cmd {
	t.Helper()
	h, err := Open(name)
	require.NoError(t, err)
	defer func() { _ = h.Close() }()
	cmd := exec.Command("sleep", "30")
	require.NoError(t, Start(cmd, h))
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// quick is how long a scan of /proc may take on a loaded test machine; far
// below the timeouts the tests give WaitGone when they expect it to succeed.
const quick = 3 * time.Second

// waitGone runs WaitGone with timeout and returns its error and how long it took.
func waitGone(id Ident, timeout time.Duration) (time.Duration, error) {
	return timed(timeout, func(ctx context.Context) error { return WaitGone(ctx, id) })
}

// timed runs wait with timeout and returns its error and how long it took.
func timed(timeout time.Duration, wait func(context.Context) error) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err := wait(ctx)
	return time.Since(start), err
}

func TestWaitGone(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)

	t.Run("unused", func(t *testing.T) {
		name, id := createNS(t)
		pids, err := Holders(id)
		require.NoError(t, err)
		assert.Empty(t, pids, "a bind mount is no process")
		require.NoError(t, Delete(name))
		took, err := waitGone(id, 20*time.Second)
		require.NoError(t, err)
		assert.Less(t, took, quick)
	})

	t.Run("held by a process", func(t *testing.T) {
		name, id := createNS(t)
		cmd := startSleeper(t, name)
		pid := cmd.Process.Pid
		require.NoError(t, Delete(name))

		pids, err := Holders(id)
		require.NoError(t, err)
		assert.Equal(t, []int{pid}, pids)

		took, err := waitGone(id, 300*time.Millisecond)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorContains(t, err, strconv.Itoa(pid), "names the holder")
		assert.GreaterOrEqual(t, took, 300*time.Millisecond)
		assert.Less(t, took, 300*time.Millisecond+quick, "honours the deadline")

		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()
		took, err = waitGone(id, 20*time.Second)
		require.NoError(t, err)
		assert.Less(t, took, quick)
		pids, err = Holders(id)
		require.NoError(t, err)
		assert.Empty(t, pids)
	})

	t.Run("held by an fd", func(t *testing.T) {
		name, id := createNS(t)
		h, err := Open(name)
		require.NoError(t, err)
		defer func() { _ = h.Close() }()
		require.NoError(t, Delete(name))

		pids, err := Holders(id)
		require.NoError(t, err)
		assert.Equal(t, []int{os.Getpid()}, pids)
		_, err = waitGone(id, 100*time.Millisecond)
		require.ErrorIs(t, err, context.DeadlineExceeded)

		require.NoError(t, h.Close())
		_, err = waitGone(id, 5*time.Second)
		require.NoError(t, err)
	})

	t.Run("held by a thread", func(t *testing.T) {
		name, id := createNS(t)
		h, err := Open(name)
		require.NoError(t, err)
		require.NoError(t, Delete(name))
		entered, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
		go func() {
			done <- Do(h, func() error {
				close(entered)
				<-release
				return nil
			})
		}()
		<-entered
		require.NoError(t, h.Close(), "only the thread holds it now")

		pids, err := Holders(id)
		assert.NoError(t, err)
		assert.Equal(t, []int{os.Getpid()}, pids)
		_, err = waitGone(id, 100*time.Millisecond)
		assert.ErrorIs(t, err, context.DeadlineExceeded)

		close(release)
		require.NoError(t, <-done)
		_, err = waitGone(id, 5*time.Second)
		require.NoError(t, err)
	})

	// The kernel gives a freed namespace's number to the next new one, and
	// other packages' tests make namespaces all the time: a namespace that
	// has our number but not our cookie means ours is gone.
	t.Run("its number taken by a new namespace", func(t *testing.T) {
		name, other := createNS(t)
		startSleeper(t, name)
		ours := Ident{Ino: other.Ino, Cookie: other.Cookie + 1}
		took, err := waitGone(ours, 20*time.Second)
		require.NoError(t, err)
		assert.Less(t, took, quick)
		_, err = waitGone(other, 100*time.Millisecond)
		require.ErrorIs(t, err, context.DeadlineExceeded, "the new one is still held")
	})

	t.Run("identified for good", func(t *testing.T) {
		name, id := createNS(t)
		assert.NotZero(t, id.Cookie, "the kernel here has SO_NETNS_COOKIE")
		again, err := Identify("/proc/self/ns/net")
		require.NoError(t, err)
		assert.NotEqual(t, id, again, "our own namespace is another")
		byPath, err := Identify(Path(name))
		require.NoError(t, err)
		assert.Equal(t, id, byPath)
	})

	t.Run("cancelled", func(t *testing.T) {
		name, id := createNS(t)
		startSleeper(t, name)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, WaitGone(ctx, id), context.Canceled)
	})
}
