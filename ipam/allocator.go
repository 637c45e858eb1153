package ipam

import (
	"fmt"
	"net/netip"
)

// Allocator hands out the IPv4 host addresses of one subnet to owners
// (workloads, access peers); their IPv6 addresses follow via Subnets.Twin.
//
// It never hands out the network address, the gateway (first host) or the
// broadcast address. Never-used addresses go first, in ascending order (a
// cursor); once they are exhausted, released addresses come back oldest
// release first. An Allocator keeps state only for addresses that are
// allocated or were released, so a /16 costs nothing up front.
//
// An Allocator is not safe for concurrent use: the caller holds the lock or
// transaction that guards it. The zero Allocator has no subnet and no
// addresses; use NewAllocator or UnmarshalJSON.
type Allocator struct {
	subnet netip.Prefix
	base   uint32 // the network address as an integer
	first  uint32 // offset of the lowest allocatable address (2)
	last   uint32 // offset of the highest allocatable address (size-2)
	hosts  int    // how many addresses are allocatable

	// next is the cursor: every allocatable offset below it is allocated or
	// released; offsets from it upwards were never used unless allocated or
	// released explicitly (Reserve), in which case the cursor skips them.
	next      uint32
	allocated map[uint32]string // offset -> owner
	released  map[uint32]uint64 // offset -> release sequence number
	seq       uint64            // the sequence number the next release gets
	// queue holds releases in the order they happened. An entry is stale when
	// released no longer maps its offset to its seq (Reserve took it back);
	// stale entries are skipped when popped and dropped by compact.
	queue []release
}

// release is one entry of the reuse queue.
type release struct {
	off uint32
	seq uint64
}

// NewAllocator returns an empty Allocator for an IPv4 subnet without host
// bits, no longer than /30.
func NewAllocator(subnet netip.Prefix) (*Allocator, error) {
	if err := checkPrefix4("subnet", subnet); err != nil {
		return nil, err
	}
	if subnet.Bits() > maxSubnetBits {
		return nil, fmt.Errorf("subnet %s is longer than /%d", subnet, maxSubnetBits)
	}
	a := newAllocator(subnet)
	a.next = a.first
	return a, nil
}

// newAllocator sets up the geometry of subnet, which the caller has checked.
func newAllocator(subnet netip.Prefix) *Allocator {
	size := uint64(1) << (32 - subnet.Bits())
	return &Allocator{
		subnet:    subnet,
		base:      u32(subnet.Addr()),
		first:     2,
		last:      uint32(size - 2),
		hosts:     int(size - 3),
		allocated: make(map[uint32]string),
		released:  make(map[uint32]uint64),
	}
}

// Subnet returns the subnet the Allocator hands out addresses from.
func (a *Allocator) Subnet() netip.Prefix { return a.subnet }

// Allocate hands the next free address to owner. It returns ErrFull when no
// address is left.
func (a *Allocator) Allocate(owner string) (netip.Addr, error) {
	if len(a.allocated) >= a.hosts {
		return netip.Addr{}, fmt.Errorf("allocating in %s: %w", a.subnet, ErrFull)
	}
	for a.next <= a.last && a.used(a.next) {
		a.next++
	}
	if a.next <= a.last {
		off := a.next
		a.next++
		a.allocated[off] = owner
		return a.addr(off), nil
	}
	for len(a.queue) > 0 {
		r := a.queue[0]
		a.queue = a.queue[1:]
		if seq, ok := a.released[r.off]; !ok || seq != r.seq {
			continue // stale: reserved again since its release
		}
		delete(a.released, r.off)
		a.allocated[r.off] = owner
		return a.addr(r.off), nil
	}
	// Unreachable while the invariants hold: fewer than hosts are allocated,
	// so some address is never-used or released.
	return netip.Addr{}, fmt.Errorf("allocating in %s: %w", a.subnet, ErrFull)
}

// Reserve hands the specific address addr to owner. It returns ErrOutside
// when addr is not inside the subnet, ErrReserved for the network, gateway or
// broadcast address, and ErrTaken when addr is already allocated (even to the
// same owner), each wrapped with the address.
func (a *Allocator) Reserve(addr netip.Addr, owner string) error {
	off, err := a.offset(addr)
	if err != nil {
		return fmt.Errorf("reserving %s: %w", addr, err)
	}
	if cur, ok := a.allocated[off]; ok {
		return fmt.Errorf("reserving %s: %w by %q", addr, ErrTaken, cur)
	}
	if _, ok := a.released[off]; ok {
		delete(a.released, off) // its queue entry is now stale
		a.compact()
	}
	a.allocated[off] = owner
	return nil
}

// Release frees addr; it goes to the back of the reuse queue. It reports
// false if addr was not allocated.
func (a *Allocator) Release(addr netip.Addr) bool {
	off, err := a.offset(addr)
	if err != nil {
		return false
	}
	if _, ok := a.allocated[off]; !ok {
		return false
	}
	delete(a.allocated, off)
	a.released[off] = a.seq
	a.queue = append(a.queue, release{off: off, seq: a.seq})
	a.seq++
	return true
}

// Owner returns the owner of addr and whether addr is allocated.
func (a *Allocator) Owner(addr netip.Addr) (string, bool) {
	off, err := a.offset(addr)
	if err != nil {
		return "", false
	}
	owner, ok := a.allocated[off]
	return owner, ok
}

// Allocated returns a copy of the allocated addresses and their owners.
func (a *Allocator) Allocated() map[netip.Addr]string {
	m := make(map[netip.Addr]string, len(a.allocated))
	for off, owner := range a.allocated {
		m[a.addr(off)] = owner
	}
	return m
}

// Free returns how many addresses are left to allocate.
func (a *Allocator) Free() int { return a.hosts - len(a.allocated) }

// used reports whether off is allocated or waiting in the reuse queue.
func (a *Allocator) used(off uint32) bool {
	if _, ok := a.allocated[off]; ok {
		return true
	}
	_, ok := a.released[off]
	return ok
}

// compact drops stale queue entries once they outnumber live ones, so
// the queue stays proportional to the released addresses.
func (a *Allocator) compact() {
	if len(a.queue) <= 2*len(a.released)+16 {
		return
	}
	live := make([]release, 0, len(a.released))
	for _, r := range a.queue {
		if seq, ok := a.released[r.off]; ok && seq == r.seq {
			live = append(live, r)
		}
	}
	a.queue = live
}

// offset returns addr's offset inside the subnet, ErrOutside when it is not
// inside and ErrReserved for the network, gateway and broadcast address.
func (a *Allocator) offset(addr netip.Addr) (uint32, error) {
	addr = addr.Unmap()
	if !a.subnet.IsValid() || !a.subnet.Contains(addr) {
		return 0, ErrOutside
	}
	off := u32(addr) - a.base
	if off < a.first || off > a.last {
		return 0, ErrReserved
	}
	return off, nil
}

// addr returns the address at offset off inside the subnet.
func (a *Allocator) addr(off uint32) netip.Addr { return from32(a.base + off) }
