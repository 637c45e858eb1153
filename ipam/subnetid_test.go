package ipam

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// oldSubnetID is the mapping before issue 10: the subnet's index counted in
// blocks of its own size, which made 10.20.4.0/24 and 10.20.1.0/26 share
// the id 4.
func oldSubnetID(ipRange, subnet netip.Prefix) uint32 {
	return (u32(subnet.Addr()) - u32(ipRange.Addr())) >> (32 - subnet.Bits())
}

// TestSubnetIDKeepsRunningNetworks checks that every network whose members
// have the range's default subnet length (all /24s in a /16: what znet
// deploy plans) keeps the IPv6 /64s it had, for every range length.
func TestSubnetIDKeepsRunningNetworks(t *testing.T) {
	t.Run("every /24 of a /16", func(t *testing.T) {
		r := pfx("10.20.0.0/16")
		for i := range 256 {
			sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 20, byte(i), 0}), 24)
			id, err := SubnetID(r, sub)
			require.NoError(t, err)
			require.Equal(t, oldSubnetID(r, sub), uint32(id), "%s", sub)
			s, err := NodeSubnets(r, pfx(ula), sub)
			require.NoError(t, err)
			require.Equal(t, pfx(fmt.Sprintf("fd3c:9a1e:77b2:%x::/64", i)), s.V6)
		}
	})
	for rangeBits := minRangeBits; rangeBits <= 28; rangeBits++ {
		r := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, 0}), rangeBits)
		bits := DefaultSubnetBits(rangeBits)
		n := uint32(1) << (bits - rangeBits)
		for _, i := range []uint32{0, 1, n / 2, n - 1} {
			sub := netip.PrefixFrom(from32(u32(r.Addr())+i<<(32-bits)), bits)
			t.Run(sub.String()+" in "+r.String(), func(t *testing.T) {
				id, err := SubnetID(r, sub)
				require.NoError(t, err)
				assert.Equal(t, oldSubnetID(r, sub), uint32(id))
			})
		}
	}
}

func TestSubnetIDNoLongerCollides(t *testing.T) {
	r := pfx("10.20.0.0/16")
	a, err := NodeSubnets(r, pfx(ula), pfx("10.20.4.0/24"))
	require.NoError(t, err)
	b, err := NodeSubnets(r, pfx(ula), pfx("10.20.1.0/26"))
	require.NoError(t, err)
	assert.Equal(t, "fd3c:9a1e:77b2:4::/64", a.V6.String())
	assert.Equal(t, "fd3c:9a1e:77b2:1::/64", b.V6.String())
	assert.False(t, a.V6.Overlaps(b.V6))
}

// FuzzSubnetID places two IPv4 subnets in a range and checks that two
// subnets that do not overlap never share an id, and that ranges of /15
// or longer map every subnet. data[0] picks the range length (/8../28),
// then each subnet takes four bytes of offset and one of length.
func FuzzSubnetID(f *testing.F) {
	f.Add([]byte{8, 0, 0, 4, 0, 24, 0, 0, 1, 0, 26})    // /16: 10.20.4.0/24 and 10.20.1.0/26, the review's collision
	f.Add([]byte{8, 0, 0, 1, 0, 26, 0, 0, 1, 64, 26})   // /16: two /26s of one /24
	f.Add([]byte{8, 0, 0, 0, 0, 20, 0, 0, 16, 0, 22})   // /16: a /20 and a /22 right after it
	f.Add([]byte{8, 0, 0, 64, 0, 30, 0, 0, 255, 4, 30}) // /16: /30s where the two kinds of id meet
	f.Add([]byte{0, 0, 5, 0, 0, 16, 0, 6, 0, 0, 30})    // /8: a /16 and a /30
	f.Add([]byte{7, 0, 0, 0, 4, 30, 0, 1, 0, 0, 24})    // /15: a /30 off a boundary
	f.Add([]byte{20, 0, 0, 0, 8, 29, 0, 0, 0, 0, 30})   // /28: /29 and /30
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 11 {
			return
		}
		rangeBits := minRangeBits + int(data[0])%21
		r := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, 0}), rangeBits).Masked()
		size := uint32(1) << (32 - rangeBits)
		subnet := func(b []byte) netip.Prefix {
			off := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) % size
			bits := rangeBits + int(b[4])%(maxSubnetBits-rangeBits+1)
			return netip.PrefixFrom(from32(u32(r.Addr())+off), bits).Masked()
		}
		a, b := subnet(data[1:6]), subnet(data[6:11])
		ida, erra := SubnetID(r, a)
		idb, errb := SubnetID(r, b)
		for _, e := range []struct {
			p   netip.Prefix
			err error
		}{{a, erra}, {b, errb}} {
			if e.err != nil && rangeBits >= 15 {
				t.Fatalf("SubnetID(%s, %s): %v", r, e.p, e.err)
			}
		}
		if erra == nil && errb == nil && !a.Overlaps(b) && ida == idb {
			t.Fatalf("range %s: %s and %s share the id %d", r, a, b, ida)
		}
	})
}

// TestSubnetIDEverySubnet maps every subnet of a few ranges, of every
// length, and checks that subnets sharing an id overlap.
func TestSubnetIDEverySubnet(t *testing.T) {
	for _, r := range []string{"10.20.0.0/16", "10.20.0.0/15", "10.20.0.0/22", "10.20.0.0/28"} {
		t.Run(r, func(t *testing.T) {
			ipRange := pfx(r)
			byID := map[uint16][]netip.Prefix{}
			for bits := ipRange.Bits(); bits <= maxSubnetBits; bits++ {
				step := uint32(1) << (32 - bits)
				for off := uint32(0); off < 1<<(32-ipRange.Bits()); off += step {
					p := netip.PrefixFrom(from32(u32(ipRange.Addr())+off), bits)
					id, err := SubnetID(ipRange, p)
					require.NoError(t, err)
					for _, q := range byID[id] {
						require.True(t, p.Overlaps(q), "%s and %s share the id %d", p, q, id)
					}
					byID[id] = append(byID[id], p)
				}
			}
		})
	}
}
