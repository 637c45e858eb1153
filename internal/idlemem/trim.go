package idlemem

import (
	"net"
	"runtime/debug"
	"sync"
	"time"
)

// Trimmer returns the pages freed by a burst of control requests to the
// kernel once the burst is over.
//
// Why: a data plane's live heap holds ~28 MiB of packet buffers it mostly
// never touches, so the collector's goal (GOGC=100: twice the live heap)
// lets ~28 MiB of garbage pile up before a collection. Each control request
// (a UAPI read of the device, a resolver query) leaves a few KiB of
// garbage, and until the next collection it lands on fresh pages, each of
// which becomes resident: measured, 300 UAPI reads took a data plane from
// 2.1 to 5.1 MiB of anonymous memory. Lowering GOGC or a soft memory limit
// did not stop it (the collector frees the garbage but keeps the pages);
// a collection that also returns the freed pages (debug.FreeOSMemory) does.
// The packet path is untouched: a trim runs at most once per delay and only
// after control requests.
type Trimmer struct {
	delay time.Duration
	trim  func() // debug.FreeOSMemory; replaced in tests

	mu      sync.Mutex
	pending bool // a trim is scheduled
}

// NewTrimmer returns a Trimmer that trims delay after the first request of
// a burst, so at most once per delay.
func NewTrimmer(delay time.Duration) *Trimmer {
	return &Trimmer{delay: delay, trim: debug.FreeOSMemory}
}

// Touch records a control request: it schedules a trim delay from now
// unless one is scheduled already.
func (t *Trimmer) Touch() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending {
		return
	}
	t.pending = true
	time.AfterFunc(t.delay, t.run)
}

// run trims, unless the collector is held (a start in progress: a
// collection now would put the start's allocations on freed pages, see
// Hold); the request that comes after the start schedules the next one.
func (t *Trimmer) run() {
	t.mu.Lock()
	t.pending = false
	t.mu.Unlock()
	mu.Lock()
	h := held
	mu.Unlock()
	if !h {
		t.trim()
	}
}

// Listener wraps l so that every connection it accepts touches t.
func (t *Trimmer) Listener(l net.Listener) net.Listener {
	return &trimListener{Listener: l, t: t}
}

type trimListener struct {
	net.Listener
	t *Trimmer
}

// Accept accepts from the wrapped listener and touches the Trimmer on
// success. Errors pass unchanged: callers compare them (net.ErrClosed).
func (l *trimListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.t.Touch()
	}
	return c, err
}
