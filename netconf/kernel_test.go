package netconf

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
)

// TestKernelDeleteWaitsUntilFreed holds a namespace with a socket made
// inside it, which /proc shows as no more than "socket:[N]": Delete
// returns only once the socket is closed and the kernel freed the
// namespace.
func TestKernelDeleteWaitsUntilFreed(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	name := "zt-nc-" + testutil.RandomHex(t, 4)
	require.NoError(t, namespaces.Create(name))
	t.Cleanup(func() { _ = namespaces.Delete(name) })
	h, err := namespaces.Open(name)
	require.NoError(t, err)
	fd := -1
	require.NoError(t, namespaces.Do(h, func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	}))
	require.NoError(t, h.Close())
	closeSock := func() {
		if fd >= 0 {
			assert.NoError(t, unix.Close(fd))
			fd = -1
		}
	}
	t.Cleanup(closeSock)

	done := make(chan error, 1)
	go func() { done <- Kernel{}.Delete(context.Background(), name) }()
	select {
	case err := <-done:
		t.Fatalf("Delete returned (%v) while a socket held the namespace", err)
	case <-time.After(300 * time.Millisecond):
	}
	assert.False(t, namespaces.Exists(name), "the name is gone at once")
	closeSock()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(deleteWait + 5*time.Second):
		t.Fatal("Delete did not return after the socket closed")
	}

	require.NoError(t, Kernel{}.Delete(context.Background(), name), "deleting twice")
}

func TestKernelDeleteLingering(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	name := "zt-nc-" + testutil.RandomHex(t, 4)
	require.NoError(t, namespaces.Create(name))
	h, err := namespaces.Open(name)
	require.NoError(t, err)
	defer func() { _ = h.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = Kernel{}.Delete(ctx, name)
	require.ErrorIs(t, err, ErrLingering)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, namespaces.Exists(name))
}
