package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/overlay/overlaytest"
	"github.com/znet/znet/store"
)

func TestApplyIsObserved(t *testing.T) {
	st, err := store.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, st.Close()) })
	var took []time.Duration
	d, err := New(Config{
		NodeID: "node1", Store: st, Backend: overlaytest.New("userspace"),
		ObserveApply: func(d time.Duration) { took = append(took, d) },
	})
	require.NoError(t, err)
	t.Cleanup(d.Close)

	// A spec this node is no member of fails before the kernel is touched;
	// it still took time and is observed.
	_, err = d.Apply(context.Background(), oneNodeSpec("shop", "node2", 1))
	require.Error(t, err)
	require.Len(t, took, 1)
	assert.Positive(t, took[0])
}
