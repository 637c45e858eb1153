package ipam

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
)

// allocatorJSON is the wire form of an Allocator. Next is the cursor; when
// every address has been handed out once it is the broadcast address.
type allocatorJSON struct {
	Subnet    netip.Prefix      `json:"subnet"`
	Next      netip.Addr        `json:"next"`
	Allocated map[string]string `json:"allocated"`
	Released  map[string]uint64 `json:"released"`
	Seq       uint64            `json:"seq"`
}

// MarshalJSON encodes the Allocator compactly and deterministically, with
// addresses in ascending order:
//
//	{"subnet":"10.20.1.0/24","next":"10.20.1.5","allocated":{"10.20.1.2":"workload/web"},"released":{"10.20.1.3":4},"seq":5}
func (a *Allocator) MarshalJSON() ([]byte, error) {
	if !a.subnet.IsValid() {
		return nil, errors.New("encoding allocator: no subnet")
	}
	var b bytes.Buffer
	b.WriteString(`{"subnet":"`)
	b.WriteString(a.subnet.String())
	b.WriteString(`","next":"`)
	b.WriteString(a.addr(a.next).String())
	b.WriteString(`","allocated":{`)
	for i, off := range sortedKeys(a.allocated) {
		owner, err := json.Marshal(a.allocated[off])
		if err != nil {
			return nil, fmt.Errorf("encoding owner of %s: %w", a.addr(off), err)
		}
		writeKey(&b, i, a.addr(off))
		b.Write(owner)
	}
	b.WriteString(`},"released":{`)
	for i, off := range sortedKeys(a.released) {
		writeKey(&b, i, a.addr(off))
		b.WriteString(strconv.FormatUint(a.released[off], 10))
	}
	b.WriteString(`},"seq":`)
	b.WriteString(strconv.FormatUint(a.seq, 10))
	b.WriteByte('}')
	return b.Bytes(), nil
}

// writeKey writes the i-th key of a JSON object (an address needs no escaping).
func writeKey(b *bytes.Buffer, i int, addr netip.Addr) {
	if i > 0 {
		b.WriteByte(',')
	}
	b.WriteByte('"')
	b.WriteString(addr.String())
	b.WriteString(`":`)
}

func sortedKeys[V any](m map[uint32]V) []uint32 {
	keys := make([]uint32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// UnmarshalJSON replaces the Allocator with the one encoded in b, after
// checking it: unknown fields, addresses outside the subnet or reserved ones,
// an address both allocated and released, release numbers that repeat or are
// not below seq, and a cursor that skipped an address it never handed out are
// all rejected. On error the Allocator is left unchanged.
func (a *Allocator) UnmarshalJSON(b []byte) error {
	var w allocatorJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("decoding allocator: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("decoding allocator: data after the object")
	}
	n, err := loadAllocator(w)
	if err != nil {
		return fmt.Errorf("decoding allocator: %w", err)
	}
	*a = *n
	return nil
}

// loadAllocator builds an Allocator from its wire form and checks every
// invariant the methods rely on.
func loadAllocator(w allocatorJSON) (*Allocator, error) {
	if err := checkPrefix4("subnet", w.Subnet); err != nil {
		return nil, err
	}
	if w.Subnet.Bits() > maxSubnetBits {
		return nil, fmt.Errorf("subnet %s is longer than /%d", w.Subnet, maxSubnetBits)
	}
	a := newAllocator(w.Subnet)

	if !w.Next.Is4() || !w.Subnet.Contains(w.Next) {
		return nil, fmt.Errorf("next %s is not inside %s", w.Next, w.Subnet)
	}
	a.next = u32(w.Next) - a.base
	if a.next < a.first || a.next > a.last+1 {
		return nil, fmt.Errorf("next %s is reserved", w.Next)
	}

	for key, owner := range w.Allocated {
		off, err := a.parseKey(key)
		if err != nil {
			return nil, fmt.Errorf("allocated %w", err)
		}
		a.allocated[off] = owner
	}
	seqs := make(map[uint64]bool, len(w.Released))
	for key, seq := range w.Released {
		off, err := a.parseKey(key)
		if err != nil {
			return nil, fmt.Errorf("released %w", err)
		}
		if _, ok := a.allocated[off]; ok {
			return nil, fmt.Errorf("address %s is both allocated and released", key)
		}
		if seq >= w.Seq {
			return nil, fmt.Errorf("release %d of %s is not below seq %d", seq, key, w.Seq)
		}
		if seqs[seq] {
			return nil, fmt.Errorf("release %d of %s repeats", seq, key)
		}
		seqs[seq] = true
		a.released[off] = seq
		a.queue = append(a.queue, release{off: off, seq: seq})
	}
	a.seq = w.Seq
	slices.SortFunc(a.queue, func(x, y release) int { return cmp.Compare(x.seq, y.seq) })

	// Every address below the cursor was handed out once, so it must be
	// allocated or released now; otherwise it would be lost for good.
	below := 0
	for off := range a.allocated {
		if off < a.next {
			below++
		}
	}
	for off := range a.released {
		if off < a.next {
			below++
		}
	}
	if below != int(a.next-a.first) {
		return nil, fmt.Errorf("next %s skips %d addresses that are neither allocated nor released", w.Next, int(a.next-a.first)-below)
	}
	return a, nil
}

// parseKey parses an address key of the allocated or released object.
func (a *Allocator) parseKey(key string) (uint32, error) {
	addr, err := netip.ParseAddr(key)
	if err != nil {
		return 0, fmt.Errorf("address: %w", err)
	}
	if !addr.Is4() {
		return 0, fmt.Errorf("address %s is not IPv4", key)
	}
	off, err := a.offset(addr)
	if err != nil {
		return 0, fmt.Errorf("address %s: %w", key, err)
	}
	return off, nil
}
