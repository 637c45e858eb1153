package ipam

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

// maxSubnetBits is the longest IPv4 subnet a node can own: a /30 still has a
// network address, a gateway, one host and a broadcast address.
const maxSubnetBits = 30

// minRangeBits is the shortest range whose default-sized subnets all get an
// IPv6 /64 of their own: a /8 holds 65536 /24s, as many as a /48 holds /64s.
const minRangeBits = 8

// maxSubnetID is the highest 16-bit subnet id of a /64 inside a /48.
const maxSubnetID = 1<<16 - 1

// Subnets is one node's slice of a network: its IPv4 subnet, the IPv6 /64 twin
// in the network's ULA /48, and the gateway (first host) of each.
type Subnets struct {
	V4, V6             netip.Prefix
	Gateway4, Gateway6 netip.Addr
}

// NodeSubnets derives a node's Subnets from the network's IPv4 range, the
// network's IPv6 /48 and the node's IPv4 subnet. The /64's 16-bit subnet id
// is SubnetID(ipRange, subnet4), so range 10.20.0.0/16, subnet 10.20.1.0/24
// and /48 fd3c:9a1e:77b2::/48 give fd3c:9a1e:77b2:1::/64 with gateways
// 10.20.1.1 and fd3c:9a1e:77b2:1::1.
//
// It fails when a prefix is of the wrong family or has host bits set, when
// ula is not a /48, and when SubnetID fails.
func NodeSubnets(ipRange, ula, subnet4 netip.Prefix) (Subnets, error) {
	if !ula.IsValid() || !ula.Addr().Is6() || ula.Addr().Is4In6() || ula.Addr().Zone() != "" {
		return Subnets{}, fmt.Errorf("ipv6 range %s is not an IPv6 prefix", ula)
	}
	if ula.Bits() != 48 {
		return Subnets{}, fmt.Errorf("ipv6 range %s is not a /48", ula)
	}
	if ula != ula.Masked() {
		return Subnets{}, fmt.Errorf("ipv6 range %s has host bits set", ula)
	}
	id, err := SubnetID(ipRange, subnet4)
	if err != nil {
		return Subnets{}, err
	}
	v6 := ula.Addr().As16()
	binary.BigEndian.PutUint16(v6[6:8], id)
	s := Subnets{
		V4:       subnet4,
		V6:       netip.PrefixFrom(netip.AddrFrom16(v6), 64),
		Gateway4: from32(u32(subnet4.Addr()) + 1),
	}
	s.Gateway6 = s.Twin(s.Gateway4)
	return s, nil
}

// SubnetID returns the 16-bit subnet id of the IPv6 /64 twin of subnet4
// inside the network's /48. A subnet that starts on a block boundary, a
// block being the range's default subnet length (DefaultSubnetBits: /24
// for ranges up to /20), gets its offset in the range counted in blocks:
// every /24 of a /16 keeps the id it always had (10.20.1.0/24 -> 1), and a
// member's id never depends on the others. Any other subnet (longer than a
// block, not at its start) gets the number of blocks in the range plus its
// offset counted in /30s (10.20.1.64/26 in a /16 -> 256 + 80).
//
// So two subnets that do not overlap never share an id: block-aligned
// network addresses differ in their block number, the others in their /30
// number, and the first kind stays below the number of blocks. Ranges of
// /15 or longer map every subnet; in a shorter range (fewer bits) a subnet
// off a block boundary may not fit.
//
// It fails when a prefix is not IPv4 or has host bits set, when subnet4 is
// not inside ipRange or is longer than /30, when ipRange is shorter than
// /8 (more blocks than a /48 has /64s), and when an id does not fit in 16
// bits.
func SubnetID(ipRange, subnet4 netip.Prefix) (uint16, error) {
	if err := checkPrefix4("range", ipRange); err != nil {
		return 0, err
	}
	if err := checkPrefix4("subnet", subnet4); err != nil {
		return 0, err
	}
	if ipRange.Bits() < minRangeBits {
		return 0, fmt.Errorf("range %s is too big to map: shorter than /%d, it has more /%d blocks than an IPv6 /48 has /64s", ipRange, minRangeBits, DefaultSubnetBits(ipRange.Bits()))
	}
	if subnet4.Bits() < ipRange.Bits() || !ipRange.Contains(subnet4.Addr()) {
		return 0, fmt.Errorf("subnet %s is not inside range %s", subnet4, ipRange)
	}
	if subnet4.Bits() > maxSubnetBits {
		return 0, fmt.Errorf("subnet %s is longer than /%d", subnet4, maxSubnetBits)
	}
	blockBits := DefaultSubnetBits(ipRange.Bits())
	off := uint64(u32(subnet4.Addr()) - u32(ipRange.Addr()))
	if off%(1<<(32-blockBits)) == 0 {
		return uint16(off >> (32 - blockBits)), nil
	}
	id := uint64(1)<<(blockBits-ipRange.Bits()) + off>>(32-maxSubnetBits)
	if id > maxSubnetID {
		return 0, fmt.Errorf("subnet %s does not start on a /%d boundary, and range %s is too big to give it an IPv6 /64 of its own (a range of /15 or longer can)", subnet4, blockBits, ipRange)
	}
	return uint16(id), nil
}

// Twin returns the IPv6 address inside V6 whose host part equals a's offset
// inside V4 (10.20.1.200 -> fd3c:9a1e:77b2:1::c8), or the zero Addr when a is
// not inside V4.
func (s Subnets) Twin(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if !s.V4.IsValid() || !s.V6.IsValid() || !s.V4.Contains(a) {
		return netip.Addr{}
	}
	v6 := s.V6.Masked().Addr().As16()
	binary.BigEndian.PutUint64(v6[8:16], uint64(u32(a)-u32(s.V4.Masked().Addr())))
	return netip.AddrFrom16(v6)
}

// PlanSubnet returns the lowest /bits prefix inside ipRange that overlaps none
// of taken, or ErrFull if there is none. ipRange and every taken prefix must
// be IPv4; taken prefixes may lie partly or wholly outside ipRange and may be
// of any length. bits must lie between ipRange's length and /30.
func PlanSubnet(ipRange netip.Prefix, bits int, taken []netip.Prefix) (netip.Prefix, error) {
	if err := checkPrefix4("range", ipRange); err != nil {
		return netip.Prefix{}, err
	}
	if bits < ipRange.Bits() || bits > maxSubnetBits {
		return netip.Prefix{}, fmt.Errorf("planning a /%d inside %s: length must lie between /%d and /%d", bits, ipRange, ipRange.Bits(), maxSubnetBits)
	}
	spans := make([]span, 0, len(taken))
	for _, p := range taken {
		if !p.IsValid() || !p.Addr().Is4() {
			return netip.Prefix{}, fmt.Errorf("taken prefix %s is not IPv4", p)
		}
		spans = append(spans, spanOf(p.Masked()))
	}
	sortSpans(spans)

	size := uint64(1) << (32 - bits)
	r := spanOf(ipRange)
	c := r.first // the candidate prefix is [c, c+size-1]
	for _, t := range spans {
		if t.last < c {
			continue
		}
		if t.first > c+size-1 {
			break // sorted by first: nothing further overlaps the candidate
		}
		c = (t.last + size) / size * size // the next aligned start after t
		if c > r.last {
			break
		}
	}
	if c+size-1 > r.last {
		return netip.Prefix{}, fmt.Errorf("planning a /%d inside %s: %w", bits, ipRange, ErrFull)
	}
	return netip.PrefixFrom(from32(uint32(c)), bits), nil
}

// DefaultSubnetBits is the subnet length a network whose range has length
// rangeBits gets by default: /24 for ranges up to /20 (a /8..20 range holds at
// least 16 subnets), rangeBits+4 for longer ranges, and never longer than /30.
func DefaultSubnetBits(rangeBits int) int {
	if rangeBits <= 20 {
		return 24
	}
	return min(rangeBits+4, maxSubnetBits)
}

// span is an inclusive range of IPv4 addresses as integers; uint64 so that the
// arithmetic around 255.255.255.255 cannot overflow.
type span struct{ first, last uint64 }

func spanOf(p netip.Prefix) span {
	first := uint64(u32(p.Masked().Addr()))
	return span{first: first, last: first + 1<<(32-p.Bits()) - 1}
}

// sortSpans orders spans by their first address.
func sortSpans(s []span) {
	slices.SortFunc(s, func(a, b span) int { return cmp.Compare(a.first, b.first) })
}

// checkPrefix4 reports whether p is a valid IPv4 prefix without host bits.
func checkPrefix4(what string, p netip.Prefix) error {
	if !p.IsValid() || !p.Addr().Is4() {
		return fmt.Errorf("%s %s is not an IPv4 prefix", what, p)
	}
	if p != p.Masked() {
		return fmt.Errorf("%s %s has host bits set", what, p)
	}
	return nil
}

// u32 returns an IPv4 address as a big-endian integer.
func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// from32 returns the IPv4 address of a big-endian integer.
func from32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
