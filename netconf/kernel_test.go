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

// TestKernelDeleteHeldByAFile holds a namespace with a socket made inside
// it and kept by a process outside it, as a running VM keeps its tap queue
// (/proc shows no more than "socket:[N]"): Delete waits for the kernel to
// free the namespace for a while, then returns without an error, the name
// gone, rather than fail a network's delete for a VM that still runs.
func TestKernelDeleteHeldByAFile(t *testing.T) {
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
	t.Cleanup(func() { assert.NoError(t, unix.Close(fd)) })

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- Kernel{}.Delete(context.Background(), name) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(deleteWait):
		t.Fatal("Delete waited for a socket that a process outside the namespace holds")
	}
	assert.GreaterOrEqual(t, time.Since(start), freeGrace, "waited for the kernel first")
	assert.False(t, namespaces.Exists(name), "the name is gone")
	require.NoError(t, Kernel{}.Delete(context.Background(), name), "deleting twice")
}

// TestKernelDeleteFreed: a namespace nothing holds is deleted, its name
// gone.
func TestKernelDeleteFreed(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	name := "zt-nc-" + testutil.RandomHex(t, 4)
	require.NoError(t, namespaces.Create(name))
	require.NoError(t, Kernel{}.Delete(context.Background(), name))
	assert.False(t, namespaces.Exists(name))
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
