package nstest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"

	"github.com/znet/znet/namespaces"
)

// CreateNS creates namespace name and returns a handle to it. t.Cleanup
// closes the handle and deletes the namespace, pass or fail, then waits up
// to 5 s until the kernel freed it.
func CreateNS(t testing.TB, name string) netns.NsHandle {
	t.Helper()
	require.NoError(t, namespaces.Create(name))
	id, idErr := namespaces.Identify(name)
	h, err := namespaces.Open(name)
	t.Cleanup(func() {
		if err == nil {
			_ = h.Close()
		}
		assert.NoError(t, namespaces.Delete(name))
		if idErr == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			assert.NoError(t, namespaces.WaitGone(ctx, id), "namespace %s still held", name)
		}
	})
	require.NoError(t, err)
	require.NoError(t, idErr)
	return h
}
