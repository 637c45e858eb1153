// Package idlemem keeps the resident memory of a process that starts, sets
// up large buffers it rarely touches and then mostly idles (a data plane,
// one per network) small, by running no garbage collection during its
// start.
//
// Go clears heap memory it reuses, but not memory fresh from the kernel: a
// buffer that lands on fresh pages stays unbacked until it is written, one
// that lands on pages a collection freed is cleared in full, and so becomes
// resident. A data plane allocates ~28 MiB of packet buffers at start
// (using a few KiB of them while idle), then its peers and its resolver
// when znetd configures it; with the collector running meanwhile (the
// first cycle comes at 4 MiB), part of that lands on the start's freed
// garbage. Measured on znetd-dataplane (Pss_Anon right after the start):
// 2.9 MiB with the collector as usual, 2.0 MiB held through the start.
// Forcing a collection and returning the freed pages after the start
// (debug.FreeOSMemory) was measured to cost ~250 KiB more, not less.
package idlemem

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// heldLimit is the soft memory limit while the collector is held: a start
// that makes more garbage than an idle data plane ever holds (a peer
// flooding it from its first second) still gets collected.
const heldLimit = 64 << 20

var (
	mu      sync.Mutex
	held    bool
	holds   uint64 // counts Holds, so that a cycle of an earlier one releases nothing
	percent int
	limit   int64
)

// Hold turns the garbage collector off until Release, or until the heap
// reaches heldLimit: the cycle that then runs releases it. Held at the
// limit, the runtime would run cycle after cycle for as long as the live
// heap stays near it (a data plane of 1,000 peers holds ~60 MiB),
// measured at 87% of the time in mark with its assists charged to every
// allocating goroutine, so a resolver update waited ~2 ms on them. Once
// the heap has reached the limit, the start's garbage has been collected
// and holding saves nothing more. It also stops memory
// profiling: a data plane serves no profiles, and the first sampled
// allocation would map the profiler's 1.4 MiB hash table (a program that
// links no profile reader has it off already). Call it first thing in
// main. A second Hold before Release does nothing.
func Hold() {
	mu.Lock()
	defer mu.Unlock()
	if held {
		return
	}
	runtime.MemProfileRate = 0
	percent = debug.SetGCPercent(-1)
	limit = debug.SetMemoryLimit(heldLimit)
	held = true
	holds++
	releaseAtCycle(holds)
}

// releaseAtCycle calls Release once the first cycle after now ran, if
// the collector is still held by Hold number hold at heldLimit (a limit
// set since, BoundIdleGarbage's, is its setter's to end).
func releaseAtCycle(hold uint64) {
	afterCycle(func() {
		mu.Lock()
		defer mu.Unlock()
		if holds == hold && debug.SetMemoryLimit(-1) == heldLimit {
			releaseLocked()
		}
	})
}

// afterCycle calls f, in the runtime's cleanup goroutine, once the next
// garbage collection cycle has run.
func afterCycle(f func()) {
	// Not a tiny object: the allocator packs those together, and one
	// kept alive by a neighbour would never be cleaned up.
	sentinel := new([2]*byte)
	runtime.AddCleanup(sentinel, func(f func()) { f() }, f)
}

// Release turns the collector back on as it was before Hold (GOGC). Without
// a Hold it does nothing.
func Release() {
	mu.Lock()
	defer mu.Unlock()
	releaseLocked()
}

// releaseLocked is Release with mu held.
func releaseLocked() {
	if !held {
		return
	}
	held = false
	debug.SetGCPercent(percent)
	debug.SetMemoryLimit(limit)
}

// firstGarbage is how much garbage an idle process makes, once its start
// is over, before its collector is bounded (BoundIdleGarbage), and
// idleGarbage how much it may make between two collections after that.
const (
	firstGarbage = 2 << 20
	idleGarbage  = 512 << 10
)

// garbageCheck is how long after BoundIdleGarbage's delay the heap is
// first looked at; each look that finds too little garbage doubles the
// wait, up to garbageCheckMax, unless the heap grew since the last look: a
// data plane that is seldom read may never make firstGarbage, and at a
// look every 5 s a node of 1,000 such networks woke 200 times a second
// for nothing; one that is being read is looked at every 5 s, so that its
// garbage is bounded soon.
var (
	garbageCheck    = 5 * time.Second
	garbageCheckMax = time.Minute
)

// BoundIdleGarbage keeps the collector held after d until the process has
// made firstGarbage of garbage, then bounds it: a memory limit of what the
// process holds without its free pages plus idleGarbage, renewed after
// each cycle (the scavenger returns the free pages above it). Release (a
// busy process) ends it.
//
// The ~28 MiB of packet buffers are live heap: with GOGC as usual the
// garbage of control requests (a status read leaves ~0.7 KiB) grows as
// large as they before a cycle, each piece on a fresh page. Measured on a
// data plane read without a pause: 2.0 MiB after the start, 24 MiB after
// 35,000 reads, then flat: a node whose status is read every second had
// every idle data plane there after ten hours. Bounded: ~3.1 MiB after
// 5,000 reads and after 40,000. The first cycle costs the runtime ~1 MiB
// of its own (the central span lists' first blocks among it, measured)
// whatever the heap, and with the limit this close to the heap the pacer
// starts it at once: so it waits for the garbage, and a data plane that
// is seldom read stays without it.
func BoundIdleGarbage(d time.Duration) {
	mu.Lock()
	hold := holds
	mu.Unlock()
	first, most := garbageCheck, garbageCheckMax
	time.AfterFunc(d, func() {
		base := heapObjects()
		last, wait := base, first
		var look func()
		look = func() {
			done, objs := boundOnce(base, hold)
			if done {
				return
			}
			wait = nextLook(wait, objs > last, first, most)
			last = objs
			time.AfterFunc(wait, look)
		}
		time.AfterFunc(wait, look)
	})
}

// nextLook is the wait after a look at the heap that waited wait and
// found too little garbage: first again if the heap grew since the look
// before (the process is being read), else twice wait, up to most.
func nextLook(wait time.Duration, grew bool, first, most time.Duration) time.Duration {
	if grew {
		return first
	}
	return min(2*wait, most)
}

// boundOnce bounds the collector once the heap's objects grew by
// firstGarbage since base, and reports whether the wait is over and the
// heap's objects it saw. The wait is over too once Hold number hold was
// released, even if a later Hold holds the collector now: that one is not
// this bound's (a test's Hold and Release, then the next test's Hold).
func boundOnce(base, hold uint64) (bool, uint64) {
	mu.Lock()
	defer mu.Unlock()
	if !held || holds != hold {
		return true, 0
	}
	objs := heapObjects()
	if objs < base+firstGarbage {
		return false, objs
	}
	boundLocked()
	return true, objs
}

// boundLocked sets the memory limit to what the process holds now,
// without its free pages, plus idleGarbage, and renews it after the next
// cycle. Free pages are left out, else the limit would grow by the garbage
// each cycle, for as long as the Hold it bounds (the current one) holds.
func boundLocked() {
	debug.SetMemoryLimit(inUse() + idleGarbage)
	hold := holds
	afterCycle(func() { rebound(hold) })
}

// rebound renews the bound of Hold number hold after a cycle.
func rebound(hold uint64) {
	mu.Lock()
	defer mu.Unlock()
	if held && holds == hold {
		boundLocked()
	}
}

// inUse returns the memory the runtime counts against its limit, less its
// free heap pages.
func inUse() int64 {
	s := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64() - s[2].Value.Uint64())
}

// heapObjects returns the bytes of the heap's objects, live or garbage not
// yet collected.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
