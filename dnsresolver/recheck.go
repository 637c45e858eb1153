package dnsresolver

import (
	"sync/atomic"
	"time"
)

// Rechecks without waking every member's goroutine on every Update: an
// Update that keeps a thousand members asks each for quick polls
// (recheck), and a signal each woke a thousand goroutines per apply, which
// then ran for the lock the next Update held: ~40 % of what the resolver
// spent on a member added and removed (BenchmarkPushChurn: 3.0 ms per pair
// with them, 1.75 without). A goroutine already waiting for a quick poll
// wakes within recheckInterval anyway, so it is not signalled: it reads
// when the last ask came when it wakes, and times its quick polls from
// that, as it would have from the signal.

// monoEpoch is the origin of monoNow.
var monoEpoch = time.Now()

// monoNow is the time on the monotonic clock, in nanoseconds after
// monoEpoch (never 0 in practice: an ask at 0 would read as none).
func monoNow() int64 { return int64(time.Since(monoEpoch)) }

// rechecks is a member's side of the asks for quick polls.
type rechecks struct {
	// at is when the last ask came (monoNow), 0 for none.
	at atomic.Int64
	// armed: pullLoop waits for a quick poll, so it wakes within
	// recheckInterval and reads at; an ask need not signal it.
	armed atomic.Bool
}

// askRecheck asks m for recheckCount quick polls from now (monoNow). The
// store of at before the load of armed pairs with pullLoop's store of
// armed before its load of at (quickPolls.wait, then asked): one of the
// two sees the other's.
func (m *member) askRecheck(now int64) {
	m.rechecks.at.Store(now)
	if !m.rechecks.armed.Load() {
		signal(m.recheck)
	}
}

// quickPolls is pullLoop's count of the quick polls an ask started.
type quickPolls struct {
	left int           // quick polls still to make
	seen int64         // the ask (rechecks.at) they were started for
	late time.Duration // how long after that ask they were started
}

// wait returns the wait before m's next poll, d being the slow one: a
// quick poll comes sooner. armed says whether it is a quick one; m is
// marked so.
func (q *quickPolls) wait(m *member, d time.Duration) (time.Duration, bool) {
	armed := q.left > 0
	if armed {
		// The first one counts from the ask, not from when it was read.
		d = min(d, max(0, jitter(recheckInterval)-q.late))
		q.left--
		q.late = 0
	}
	m.rechecks.armed.Store(armed)
	return d, armed
}

// asked starts the quick polls again if an ask came since q looked, or
// (always) when signalled, and reports whether it did.
func (q *quickPolls) asked(m *member, signalled bool) bool {
	at := m.rechecks.at.Load()
	if at == q.seen && !signalled {
		return false
	}
	q.seen, q.left, q.late = at, recheckCount, time.Duration(monoNow()-at)
	return true
}
