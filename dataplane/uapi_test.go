package dataplane

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// emfileListener fails Accept with EMFILE fails times, then hands out one
// connection, then reports itself closed.
type emfileListener struct {
	fails  int
	handed bool
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	if !l.handed {
		l.handed = true
		c, _ := net.Pipe()
		return c, nil
	}
	return nil, net.ErrClosed
}
func (l *emfileListener) Close() error   { return nil }
func (l *emfileListener) Addr() net.Addr { return &net.UnixAddr{Name: "uapi", Net: "unix"} }

// TestAcceptUAPISurvivesEMFILE checks that running out of descriptors does
// not end the UAPI listener (it used to end the data plane): the next
// connection is still served, and only closing the listener ends it.
func TestAcceptUAPISurvivesEMFILE(t *testing.T) {
	var handled atomic.Int32
	done := make(chan struct{})
	err := acceptUAPI(&emfileListener{fails: 3}, func(c net.Conn) {
		defer close(done)
		handled.Add(1)
		_ = c.Close()
	})
	require.ErrorIs(t, err, net.ErrClosed)
	<-done
	assert.Equal(t, int32(1), handled.Load())
}
