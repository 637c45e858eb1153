package idlemem

import (
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

// An idle data plane needs one P (runtime.GOMAXPROCS): it waits on its
// sockets and answers a control request now and then. Every extra P keeps
// its own cached span per size class in use, which made ~0.35 MiB more
// resident per data plane with two CPUs (measured; more with more CPUs).
// A busy one needs all of them: wireguard-go starts its encryption and
// decryption workers per CPU. So the parent starts it with GOMAXPROCS=1
// in its environment (OneProcEnv) and the process gives itself its Ps
// back once it carries real traffic (OneProc, Batch). Not
// runtime.GOMAXPROCS(1) in main: by then the runtime has made a P per
// CPU, and the one dropped hands its cached spans to the central lists,
// whose first blocks cost more (measured +300 KiB) than the P saves.
// Never lowered again: the pages the other Ps made resident stay so after
// they go, so lowering would save nothing, and a network that was busy is
// likely to be again.

// oneProcVar marks a process started by OneProcEnv: its GOMAXPROCS=1 is
// znet's, not the user's, and is raised once the process is busy.
const oneProcVar = "ZNET_ONE_PROC"

// OneProcEnv returns the variables to add to a data plane's environment
// so that it starts on one P; none when this process's environment pins
// GOMAXPROCS, which the data plane then keeps.
//
// It also turns off the runtime's following of the CPU limit
// (updatemaxprocs=0, before any GODEBUG setting of this process's, which
// wins): once GOMAXPROCS is the runtime's default again, the runtime reads
// the cgroup's CPU quota every second for as long as the process lives,
// so every data plane that ever carried traffic woke once a second. A
// data plane takes the limit as it is when it becomes busy.
func OneProcEnv() []string {
	if _, pinned := os.LookupEnv("GOMAXPROCS"); pinned {
		return nil
	}
	debug := "GODEBUG=updatemaxprocs=0"
	if own := os.Getenv("GODEBUG"); own != "" {
		debug += "," + own
	}
	return []string{"GOMAXPROCS=1", oneProcVar + "=1", debug}
}

// busyBatches and busyWindow define real traffic: busyBatches batches of
// packets (a Batch call each) within busyWindow. An idle network sends a
// keepalive or a handshake per peer every few seconds; a transfer or a
// ping flood passes this within milliseconds.
const (
	busyBatches = 256
	busyWindow  = time.Second
)

// Procs counts a process's batches of packets and raises GOMAXPROCS once
// they come fast enough. Safe for concurrent use; nil does nothing.
type Procs struct {
	raised atomic.Bool
	count  atomic.Uint64
	mark   atomic.Int64 // since start, when count last passed busyBatches; 0: not yet

	start   time.Time
	since   func(time.Time) time.Duration // time.Since; a fake clock in tests
	raise   func()                        // gives the process its Ps back
	onRaise func()                        // after raise, for a log line; may be nil
}

// OneProc returns the Procs of a process started with OneProcEnv, which
// sets GOMAXPROCS back to the runtime's default (which follows the CPUs
// and the cgroup's limit) once the process is busy; onRaise, if not nil,
// runs once after that. In any other process GOMAXPROCS is left as it is,
// and onRaise still runs once the process is busy.
func OneProc(onRaise func()) *Procs {
	p := &Procs{start: time.Now(), since: time.Since, raise: runtime.SetDefaultGOMAXPROCS, onRaise: onRaise}
	if os.Getenv(oneProcVar) != "1" || runtime.GOMAXPROCS(0) != 1 {
		p.raise = func() {} // the user's setting, or the runtime's own
	}
	return p
}

// Batch counts one batch of packets sent or received and raises GOMAXPROCS
// when the last busyBatches batches came within busyWindow. Once raised it
// is one atomic load.
func (p *Procs) Batch() {
	if p == nil || p.raised.Load() {
		return
	}
	if p.count.Add(1)%busyBatches != 0 {
		return
	}
	now := int64(p.since(p.start)) + 1 // never 0, which means no mark
	prev := p.mark.Swap(now)
	if prev == 0 || time.Duration(now-prev) > busyWindow {
		return
	}
	if p.raised.CompareAndSwap(false, true) {
		p.raise()
		if p.onRaise != nil {
			p.onRaise()
		}
	}
}

// Raised reports whether the process was found busy: it runs with its
// usual GOMAXPROCS again (or always did).
func (p *Procs) Raised() bool { return p == nil || p.raised.Load() }
