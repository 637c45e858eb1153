package ipam

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

// model is a naive reference Allocator: it remembers every address ever used
// and keeps the reuse queue as a plain ordered slice.
type model struct {
	hosts  []netip.Addr // allocatable addresses, ascending
	used   map[netip.Addr]bool
	owners map[netip.Addr]string
	queue  []netip.Addr // released, oldest first
}

func newModel(subnet netip.Prefix) *model {
	m := &model{used: map[netip.Addr]bool{}, owners: map[netip.Addr]string{}}
	bcast := from32(u32(subnet.Addr()) + 1<<(32-subnet.Bits()) - 1)
	for ip := subnet.Addr().Next().Next(); ip != bcast; ip = ip.Next() {
		m.hosts = append(m.hosts, ip)
	}
	return m
}

func (m *model) allocate(owner string) (netip.Addr, error) {
	for _, ip := range m.hosts {
		if !m.used[ip] {
			m.used[ip] = true
			m.owners[ip] = owner
			return ip, nil
		}
	}
	if len(m.queue) == 0 {
		return netip.Addr{}, ErrFull
	}
	ip := m.queue[0]
	m.queue = m.queue[1:]
	m.owners[ip] = owner
	return ip, nil
}

func (m *model) reserve(ip netip.Addr, owner string, subnet netip.Prefix) error {
	ip = ip.Unmap()
	switch {
	case !subnet.Contains(ip):
		return ErrOutside
	case !slices.Contains(m.hosts, ip):
		return ErrReserved
	case m.owners[ip] != "":
		return ErrTaken
	}
	m.queue = slices.DeleteFunc(m.queue, func(q netip.Addr) bool { return q == ip })
	m.used[ip] = true
	m.owners[ip] = owner
	return nil
}

func (m *model) release(ip netip.Addr) bool {
	ip = ip.Unmap()
	if m.owners[ip] == "" {
		return false
	}
	delete(m.owners, ip)
	m.queue = append(m.queue, ip)
	return true
}

// FuzzAllocator drives an Allocator with a byte string and checks it against
// the reference model, against a twin that is never serialised, and against
// its invariants. data[0] picks the subnet; then each pair of bytes is one op:
// op%5 is 0 or 1 allocate, 2 release, 3 reserve, 4 a JSON round trip; the
// second byte picks the address (from two below the network address to two
// above the broadcast address) for release and reserve.
func FuzzAllocator(f *testing.F) {
	f.Add([]byte{0})                                                             // empty script on a /28
	f.Add([]byte{2, 0, 0, 0, 0})                                                 // /30: allocate twice, the second is ErrFull
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})             // /29: allocate past exhaustion
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 2, 5, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0})       // /29: allocate three, release b then a, b comes back first after exhaustion
	f.Add([]byte{0, 3, 6, 3, 2, 3, 3, 3, 17, 3, 18, 3, 19, 3, 0})                // /28: reserve a host (mapped form), the network, gateway, broadcast and outside addresses
	f.Add([]byte{0, 3, 8, 3, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})                   // /28: reserve above the cursor, again (ErrTaken), allocate past it
	f.Add(append([]byte{0, 3, 8, 2, 8}, make([]byte, 30)...))                    // /28: reserve above the cursor, release it; the cursor skips it, it comes back last
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 4, 2, 5, 3, 4, 0, 0, 0, 0}) // /29: a released address reserved again leaves the queue
	f.Add([]byte{1, 0, 0, 0, 0, 4, 0, 2, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) // /29: round trips with the cursor mid-way and a release queued
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0})                   // /29: round trip with the cursor at the end
	f.Add([]byte{4, 2, 4, 0, 0, 2, 4, 2, 4, 2, 3, 4, 0})                         // /29: releases of unallocated, twice-released and gateway addresses return false

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, data[0], 7, 0}), 28+int(data[0]%3)).Masked()
		size := 1 << (32 - subnet.Bits())
		a, err := NewAllocator(subnet)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := NewAllocator(subnet)
		if err != nil {
			t.Fatal(err)
		}
		m := newModel(subnet)
		total := a.Free()
		if total != size-3 {
			t.Fatalf("Free() = %d on a fresh %s, want %d", total, subnet, size-3)
		}

		ops := data[1:]
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], ops[i+1]
			ip := from32(u32(subnet.Addr()) + uint32(int(arg)%(size+4)-2))
			if arg%7 == 6 {
				ip = netip.AddrFrom16(ip.As16()) // IPv4-mapped form of the same address
			}
			owner := fmt.Sprintf("o%d", i)
			switch op % 5 {
			case 0, 1:
				before := a.Allocated()
				got, err := a.Allocate(owner)
				got2, err2 := plain.Allocate(owner)
				want, werr := m.allocate(owner)
				if got != want || !errors.Is(err, werr) || (err == nil) != (werr == nil) || got2 != got || (err2 == nil) != (err == nil) {
					t.Fatalf("op %d: Allocate = %v, %v; twin %v, %v; model %v, %v", i, got, err, got2, err2, want, werr)
				}
				if err == nil {
					if prev, taken := before[got]; taken {
						t.Fatalf("op %d: Allocate handed %s to %s while %s holds it", i, got, owner, prev)
					}
				}
			case 2:
				got, got2, want := a.Release(ip), plain.Release(ip), m.release(ip)
				if got != want || got2 != want {
					t.Fatalf("op %d: Release(%s) = %v, twin %v, model %v", i, ip, got, got2, want)
				}
			case 3:
				err, err2, werr := a.Reserve(ip, owner), plain.Reserve(ip, owner), m.reserve(ip, owner, subnet)
				if !errors.Is(err, werr) || (err == nil) != (werr == nil) || !errors.Is(err2, werr) || (err2 == nil) != (werr == nil) {
					t.Fatalf("op %d: Reserve(%s) = %v, twin %v, model %v", i, ip, err, err2, werr)
				}
			case 4:
				a = roundTrip(t, a)
			}
			checkInvariants(t, a, subnet, total, m.owners)
		}
		want, err := plain.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("serialised allocator diverged:\n got %s\nwant %s", got, want)
		}
	})
}

// roundTrip serialises a, loads it into a new Allocator, checks that it
// serialises byte-identically and returns the new one.
func roundTrip(t *testing.T, a *Allocator) *Allocator {
	t.Helper()
	b, err := a.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Allocator
	if err := back.UnmarshalJSON(b); err != nil {
		t.Fatalf("loading %s: %v", b, err)
	}
	b2, err := back.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("round trip changed the encoding:\n%s\n%s", b, b2)
	}
	return &back
}

func checkInvariants(t *testing.T, a *Allocator, subnet netip.Prefix, total int, owners map[netip.Addr]string) {
	t.Helper()
	alloc := a.Allocated()
	if a.Free()+len(alloc) != total {
		t.Fatalf("Free() %d + allocated %d != %d", a.Free(), len(alloc), total)
	}
	bcast := from32(u32(subnet.Addr()) + 1<<(32-subnet.Bits()) - 1)
	for ip, owner := range alloc {
		if !subnet.Contains(ip) || ip == subnet.Addr() || ip == subnet.Addr().Next() || ip == bcast {
			t.Fatalf("%s (owner %s) is not an allocatable host of %s", ip, owner, subnet)
		}
		if got, ok := a.Owner(ip); !ok || got != owner {
			t.Fatalf("Owner(%s) = %q, %v; Allocated says %q", ip, got, ok, owner)
		}
	}
	if len(alloc) != len(owners) {
		t.Fatalf("allocated %v, model %v", alloc, owners)
	}
	for ip, owner := range owners {
		if alloc[ip] != owner {
			t.Fatalf("allocated %v, model %v", alloc, owners)
		}
	}
}

// FuzzPlanSubnet plans a subnet inside a small range around taken prefixes
// derived from the input and checks the result by brute force: it lies inside
// the range, overlaps nothing taken, and every lower candidate overlaps
// something (ErrFull: every candidate does). data[0] picks the range length
// (/16../28) and data[1] the subnet length (at most 6 bits longer, so there
// are at most 64 candidates); data[2:4] move the range; then each triple is a
// taken prefix: two bytes place it within twice the range's size around it
// (so it may lie partly or wholly outside), one byte its length.
func FuzzPlanSubnet(f *testing.F) {
	f.Add([]byte{8, 0, 20, 0})                                 // /24 range, /24 subnet, nothing taken: the range itself
	f.Add([]byte{8, 0, 20, 0, 64, 0, 2})                       // /24 range, /24 subnet, the range taken: ErrFull
	f.Add([]byte{0, 6, 20, 0})                                 // /16 range, /22 subnets, nothing taken: the first /22
	f.Add([]byte{0, 6, 20, 0, 64, 0, 8, 66, 0, 10})            // /16 range, /22 subnets, the first /22 and a /24 inside the second taken
	f.Add([]byte{4, 4, 1, 2, 64, 0, 0})                        // /20 range, /24 subnets, a /18 taken that covers everything: ErrFull
	f.Add([]byte{4, 4, 1, 2, 63, 248, 14, 192, 0, 14})         // /20 range, /24 subnets, taken /32s just outside both ends
	f.Add([]byte{12, 2, 9, 9, 72, 0, 6, 104, 0, 6, 168, 0, 6}) // /28 range, /30 subnets, scattered /32s leave one hole
	f.Add([]byte{6, 6, 0, 0, 64, 0, 6, 66, 0, 8, 72, 0, 8})    // /22 range, /28 subnets, a /28 nested inside a taken /26, another right after it

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		rangeBits := 16 + int(data[0]%13)
		bits := rangeBits + int(data[1])%(min(6, 30-rangeBits)+1)
		rangeSize := uint64(1) << (32 - rangeBits)
		ipRange := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, data[2], data[3], 0}), rangeBits).Masked()

		var taken []netip.Prefix
		for rest := data[4:]; len(rest) >= 3; rest = rest[3:] {
			pos := uint64(rest[0])<<8 | uint64(rest[1])
			start := uint64(u32(ipRange.Addr())) - rangeSize/2 + pos*2*rangeSize>>16
			tBits := rangeBits - 2 + int(rest[2])%(32-rangeBits+3)
			taken = append(taken, netip.PrefixFrom(from32(uint32(start)), tBits).Masked())
		}

		got, err := PlanSubnet(ipRange, bits, taken)
		if err != nil && !errors.Is(err, ErrFull) {
			t.Fatalf("PlanSubnet(%s, %d, %v): %v", ipRange, bits, taken, err)
		}
		free := func(p netip.Prefix) bool {
			for _, q := range taken {
				if p.Overlaps(q) {
					return false
				}
			}
			return true
		}
		step := uint32(1) << (32 - bits)
		var want netip.Prefix
		for c := u32(ipRange.Addr()); ipRange.Contains(from32(c)); c += step {
			if p := netip.PrefixFrom(from32(c), bits); free(p) {
				want = p
				break
			}
		}
		if !want.IsValid() {
			if err == nil {
				t.Fatalf("PlanSubnet(%s, %d, %v) = %s, want ErrFull", ipRange, bits, taken, got)
			}
			return
		}
		if err != nil {
			t.Fatalf("PlanSubnet(%s, %d, %v): %v, want %s", ipRange, bits, taken, err, want)
		}
		if got.Bits() != bits || !ipRange.Contains(got.Addr()) || !free(got) {
			t.Fatalf("PlanSubnet(%s, %d, %v) = %s: not a free /%d inside the range", ipRange, bits, taken, got, bits)
		}
		if got != want {
			t.Fatalf("PlanSubnet(%s, %d, %v) = %s, want the lowest %s", ipRange, bits, taken, got, want)
		}
	})
}
