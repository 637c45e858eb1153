package acceptloop

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// Pauses after a temporary error: the first, and the longest.
const (
	firstPause = 5 * time.Millisecond
	maxPause   = 500 * time.Millisecond
)

// Temporary reports whether err, returned by Accept, passes by itself:
// the process or the machine ran out of descriptors or buffers, or the
// connection went away before it was accepted.
func Temporary(err error) bool {
	for _, e := range []syscall.Errno{
		syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ECONNRESET,
		syscall.ENOBUFS, syscall.ENOMEM, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Accept returns the next connection on l, or the first error of l.Accept
// that is not Temporary (net.ErrClosed once l is closed). After each
// temporary error it sleeps, 5 ms the first time and twice as long each
// next time up to 500 ms, so a closed listener is noticed within that.
func Accept(l net.Listener) (net.Conn, error) {
	pause := firstPause
	for {
		c, err := l.Accept()
		if err == nil || !Temporary(err) {
			return c, err
		}
		time.Sleep(pause)
		pause = min(2*pause, maxPause)
	}
}
