package acceptloop

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeListener returns its errors one by one (nil: a connection), then
// net.ErrClosed.
type fakeListener struct {
	errs []error
	n    int // Accept calls
}

func (l *fakeListener) Accept() (net.Conn, error) {
	l.n++
	if len(l.errs) == 0 {
		return nil, net.ErrClosed
	}
	err := l.errs[0]
	l.errs = l.errs[1:]
	if err != nil {
		return nil, err
	}
	c, _ := net.Pipe()
	return c, nil
}
func (l *fakeListener) Close() error   { return nil }
func (l *fakeListener) Addr() net.Addr { return &net.UnixAddr{Name: "fake", Net: "unix"} }

// acceptErr is an Accept error as net returns it.
func acceptErr(e syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", e)}
}

func TestAccept(t *testing.T) {
	tests := []struct {
		name  string
		errs  []error
		conn  bool
		calls int
		is    error
	}{
		{name: "a connection", errs: []error{nil}, conn: true, calls: 1},
		{name: "out of descriptors, then a connection", errs: []error{acceptErr(syscall.EMFILE), acceptErr(syscall.ENFILE), acceptErr(syscall.EMFILE), nil}, conn: true, calls: 4},
		{name: "an aborted connection is skipped", errs: []error{acceptErr(syscall.ECONNABORTED), nil}, conn: true, calls: 2},
		{name: "closed", is: net.ErrClosed, calls: 1},
		{name: "out of descriptors until closed", errs: []error{acceptErr(syscall.EMFILE)}, is: net.ErrClosed, calls: 2},
		{name: "any other error ends it", errs: []error{acceptErr(syscall.EINVAL), nil}, is: syscall.EINVAL, calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &fakeListener{errs: tt.errs}
			c, err := Accept(l)
			assert.Equal(t, tt.calls, l.n)
			if !tt.conn {
				require.ErrorIs(t, err, tt.is)
				assert.Nil(t, c)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, c)
			_ = c.Close()
		})
	}
}

func TestAcceptPausesGrow(t *testing.T) {
	var errs []error
	for range 5 {
		errs = append(errs, acceptErr(syscall.EMFILE))
	}
	l := &fakeListener{errs: append(errs, nil)}
	start := time.Now()
	c, err := Accept(l)
	require.NoError(t, err)
	_ = c.Close()
	// 5 + 10 + 20 + 40 + 80 ms: not a busy loop, not a long stall.
	assert.GreaterOrEqual(t, time.Since(start), 155*time.Millisecond)
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestTemporary(t *testing.T) {
	assert.True(t, Temporary(acceptErr(syscall.EMFILE)))
	assert.False(t, Temporary(net.ErrClosed))
	assert.False(t, Temporary(errors.New("boom")))
}
