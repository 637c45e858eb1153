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
	percent int
	limit   int64
)

// Hold turns the garbage collector off until Release, unless the heap
// reaches heldLimit. It also stops memory
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
}

// Release turns the collector back on as it was before Hold (GOGC). Without
// a Hold it does nothing.
func Release() {
	mu.Lock()
	defer mu.Unlock()
	if !held {
		return
	}
	held = false
	debug.SetGCPercent(percent)
	debug.SetMemoryLimit(limit)
}

// ReleaseAtFirstCycle keeps the collector held after d, but with a
// memory limit that lets the garbage grow as large as the heap then is
// (as GOGC=100 would after a cycle), and calls Release once the first
// cycle ran. An idle data plane's first cycles cost the runtime ~0.5 MiB
// of its own (the central span lists' first blocks; measured) whatever
// the heap: released outright, the first read of it after d (any
// allocation) started one, as the goal was still the runtime's initial
// 4 MiB. Held, its garbage lands on fresh pages, as it did released (the
// goal was then twice the heap of packet buffers); the cycle comes after
// thousands of reads instead of at the first.
func ReleaseAtFirstCycle(d time.Duration) {
	time.AfterFunc(d, func() {
		mu.Lock()
		defer mu.Unlock()
		if !held {
			return
		}
		debug.SetMemoryLimit(firstCycleLimit())
		// Not a tiny object: the allocator packs those together, and one
		// kept alive by a neighbour would never be cleaned up.
		sentinel := new([2]*byte)
		runtime.AddCleanup(sentinel, func(struct{}) { Release() }, struct{}{})
	})
}

// firstCycleLimit returns the memory the runtime counts against its limit
// now plus the heap's objects: the limit at which the held collector runs
// once the garbage has grown as large as the heap. Never above heldLimit.
func firstCycleLimit() int64 {
	s := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	metrics.Read(s)
	inUse := s[0].Value.Uint64() - s[1].Value.Uint64()
	return min(int64(inUse+s[2].Value.Uint64()), heldLimit)
}
