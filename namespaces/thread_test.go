package namespaces

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/internal/testutil"
)

// openNS opens name for t and closes it in t.Cleanup.
func openNS(t *testing.T, name string) netns.NsHandle {
	t.Helper()
	h, err := Open(name)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func TestDo(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	own := ownNS(t)
	name, id := createNS(t)
	h := openNS(t, name)
	inside := fmt.Sprintf("net:[%d]", id.Ino)
	errFn := errors.New("fn failed")

	tests := []struct {
		name    string
		do      func(fn func() error) error
		fnErr   error
		wantErr error
	}{
		{"Do", func(fn func() error) error { return Do(h, fn) }, nil, nil},
		{"DoPath by name", func(fn func() error) error { return DoPath(name, fn) }, nil, nil},
		{"DoPath by path", func(fn func() error) error { return DoPath(Path(name), fn) }, nil, nil},
		{"error passes through", func(fn func() error) error { return Do(h, fn) }, errFn, errFn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Lock the test goroutine so "the caller's thread" is one thread.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var seen string
			err := tt.do(func() error {
				l, err := os.Readlink("/proc/thread-self/ns/net")
				if err != nil {
					return err
				}
				seen = l
				return tt.fnErr
			})
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, inside, seen, "fn ran inside")
			assert.Equal(t, own, link(t, "/proc/thread-self/ns/net"), "caller's thread")
			assert.Empty(t, strayThreads(t, own))
		})
	}

	t.Run("closed handle", func(t *testing.T) {
		ran := false
		err := Do(netns.None(), func() error { ran = true; return nil })
		require.Error(t, err)
		assert.False(t, ran)
		assert.Empty(t, strayThreads(t, own))
	})
	t.Run("panic carries over", func(t *testing.T) {
		assert.PanicsWithValue(t, "boom", func() {
			_ = Do(h, func() error { panic("boom") })
		})
		assert.Empty(t, strayThreads(t, own))
	})
	t.Run("Goexit carries over", func(t *testing.T) {
		var after, deferred bool
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() { deferred = true }()
			_ = Do(h, func() error { runtime.Goexit(); return nil })
			after = true
		}()
		<-done
		assert.True(t, deferred)
		assert.False(t, after, "the caller exits too")
		assert.Empty(t, strayThreads(t, own))
	})
}

func TestDoConcurrent(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	own := ownNS(t)
	var handles []netns.NsHandle
	var links []string
	for range 3 {
		name, id := createNS(t)
		handles = append(handles, openNS(t, name))
		links = append(links, fmt.Sprintf("net:[%d]", id.Ino))
	}

	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k := i % len(handles)
			errs[i] = Do(handles[k], func() error {
				runtime.Gosched() // let others pile up on other threads
				l, err := os.Readlink("/proc/thread-self/ns/net")
				if err != nil {
					return err
				}
				if l != links[k] {
					return fmt.Errorf("in %s, want %s", l, links[k])
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "Do %d", i)
	}
	assert.Empty(t, strayThreads(t, own), "threads left in a foreign namespace")
}

func TestStart(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	own := ownNS(t)
	name, id := createNS(t)
	h := openNS(t, name)

	t.Run("child in namespace", func(t *testing.T) {
		var out bytes.Buffer
		cmd := exec.Command("/bin/sh", "-c", "readlink /proc/self/ns/net")
		cmd.Stdout = &out
		require.NoError(t, Start(cmd, h))
		require.NoError(t, cmd.Wait())
		assert.Equal(t, fmt.Sprintf("net:[%d]", id.Ino), strings.TrimSpace(out.String()))
		assert.Empty(t, strayThreads(t, own))
		assert.Equal(t, own, ownNS(t))
	})
	t.Run("missing program", func(t *testing.T) {
		cmd := exec.Command("/nonexistent/zt-ns-program")
		err := Start(cmd, h)
		require.ErrorIs(t, err, os.ErrNotExist)
		assert.Nil(t, cmd.Process)
		assert.Empty(t, strayThreads(t, own))
	})
}

// TestStartRestricted checks that the child inherits what restrict set on
// the forking thread, that no thread of the caller keeps it, and that no
// thread is left in the namespace.
func TestStartRestricted(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	name, id := createNS(t)
	ns := openNS(t, name)
	for range 20 { // on a fresh thread or, by chance, the main one
		var out bytes.Buffer
		cmd := exec.Command("cat", "/proc/self/status")
		cmd.Stdout = &out
		err := StartRestricted(cmd, ns, func() error {
			return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
		})
		require.NoError(t, err)
		require.NoError(t, cmd.Wait())
		assert.Contains(t, out.String(), "\nNoNewPrivs:\t1\n")
	}
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	assert.Contains(t, string(b), "\nNoNewPrivs:\t0\n", "the caller's threads are untouched")
	// The test holds a handle, so Holders would name it: look at threads.
	tasks, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	for _, task := range tasks {
		l, _ := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
		assert.NotEqual(t, fmt.Sprintf("net:[%d]", id), l, "thread %s is left in the namespace", task.Name())
	}
}
