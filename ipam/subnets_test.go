package ipam

import (
	"errors"
	"net/netip"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

const ula = "fd3c:9a1e:77b2::/48"

func TestNodeSubnets(t *testing.T) {
	tests := []struct {
		name, ipRange, subnet string
		v6, gw4, gw6          string
	}{
		{"design example", "10.20.0.0/16", "10.20.1.0/24", "fd3c:9a1e:77b2:1::/64", "10.20.1.1", "fd3c:9a1e:77b2:1::1"},
		{"first subnet", "10.20.0.0/16", "10.20.0.0/24", "fd3c:9a1e:77b2::/64", "10.20.0.1", "fd3c:9a1e:77b2::1"},
		{"last subnet of a /16", "10.20.0.0/16", "10.20.255.0/24", "fd3c:9a1e:77b2:ff::/64", "10.20.255.1", "fd3c:9a1e:77b2:ff::1"},
		{"last subnet of a /8 is index 65535", "10.0.0.0/8", "10.255.255.0/24", "fd3c:9a1e:77b2:ffff::/64", "10.255.255.1", "fd3c:9a1e:77b2:ffff::1"},
		{"/20 range", "172.16.0.0/20", "172.16.15.0/24", "fd3c:9a1e:77b2:f::/64", "172.16.15.1", "fd3c:9a1e:77b2:f::1"},
		{"/28 subnets of a /24", "192.168.10.0/24", "192.168.10.240/28", "fd3c:9a1e:77b2:f::/64", "192.168.10.241", "fd3c:9a1e:77b2:f::1"},
		{"subnet is the whole range", "10.1.0.0/24", "10.1.0.0/24", "fd3c:9a1e:77b2::/64", "10.1.0.1", "fd3c:9a1e:77b2::1"},
		{"/26 at the start of a /24 counts in /24s", "10.20.0.0/16", "10.20.1.0/26", "fd3c:9a1e:77b2:1::/64", "10.20.1.1", "fd3c:9a1e:77b2:1::1"},
		{"/26 inside a /24 comes after the /24s, in /30s", "10.20.0.0/16", "10.20.1.64/26", "fd3c:9a1e:77b2:150::/64", "10.20.1.65", "fd3c:9a1e:77b2:150::1"},
		{"last /30 of a /16", "10.20.0.0/16", "10.20.255.252/30", "fd3c:9a1e:77b2:40ff::/64", "10.20.255.253", "fd3c:9a1e:77b2:40ff::1"},
		{"/28 at the start of the last /24 of a /8", "10.0.0.0/8", "10.255.255.0/28", "fd3c:9a1e:77b2:ffff::/64", "10.255.255.1", "fd3c:9a1e:77b2:ffff::1"},
		{"/16 subnet of a /8 counts in /24s", "10.0.0.0/8", "10.5.0.0/16", "fd3c:9a1e:77b2:500::/64", "10.5.0.1", "fd3c:9a1e:77b2:500::1"},
		{"/26 in a /22 range counts in /26s", "10.20.0.0/22", "10.20.1.64/26", "fd3c:9a1e:77b2:5::/64", "10.20.1.65", "fd3c:9a1e:77b2:5::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NodeSubnets(pfx(tt.ipRange), pfx(ula), pfx(tt.subnet))
			require.NoError(t, err)
			assert.Equal(t, Subnets{
				V4:       pfx(tt.subnet),
				V6:       pfx(tt.v6),
				Gateway4: addr(tt.gw4),
				Gateway6: addr(tt.gw6),
			}, s)
		})
	}
}

func TestNodeSubnetsErrors(t *testing.T) {
	tests := []struct {
		name, ipRange, ula, subnet string
		msg                        string
	}{
		{"range too big to map", "10.0.0.0/7", ula, "10.0.1.0/24", "too big to map"},
		{"off a /24 boundary in a /8", "10.0.0.0/8", ula, "10.0.0.64/26", "does not start on a /24 boundary"},
		{"off a /24 boundary far into a /14", "10.0.0.0/14", ula, "10.3.255.252/30", "does not start on a /24 boundary"},
		{"subnet outside range", "10.20.0.0/16", ula, "10.21.0.0/24", "not inside"},
		{"subnet larger than range", "10.20.0.0/16", ula, "10.20.0.0/15", "not inside"},
		{"subnet longer than /30", "10.20.0.0/16", ula, "10.20.1.0/31", "longer than /30"},
		{"subnet has host bits", "10.20.0.0/16", ula, "10.20.1.5/24", "host bits"},
		{"range has host bits", "10.20.0.1/16", ula, "10.20.1.0/24", "host bits"},
		{"subnet is IPv6", "10.20.0.0/16", ula, "fd00::/64", "not an IPv4"},
		{"range is IPv6", "fd00::/48", ula, "10.20.1.0/24", "not an IPv4"},
		{"ula is IPv4", "10.20.0.0/16", "10.0.0.0/8", "10.20.1.0/24", "not an IPv6"},
		{"ula is not a /48", "10.20.0.0/16", "fd3c:9a1e:77b2::/56", "10.20.1.0/24", "not a /48"},
		{"ula has host bits", "10.20.0.0/16", "fd3c:9a1e:77b2:1::/48", "10.20.1.0/24", "host bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NodeSubnets(pfx(tt.ipRange), pfx(tt.ula), pfx(tt.subnet))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
	t.Run("zero prefixes", func(t *testing.T) {
		_, err := NodeSubnets(netip.Prefix{}, pfx(ula), pfx("10.20.1.0/24"))
		assert.Error(t, err)
		_, err = NodeSubnets(pfx("10.20.0.0/16"), netip.Prefix{}, pfx("10.20.1.0/24"))
		assert.Error(t, err)
		_, err = NodeSubnets(pfx("10.20.0.0/16"), pfx(ula), netip.Prefix{})
		assert.Error(t, err)
	})
}

func TestTwin(t *testing.T) {
	s24, err := NodeSubnets(pfx("10.20.0.0/16"), pfx(ula), pfx("10.20.1.0/24"))
	require.NoError(t, err)
	s16, err := NodeSubnets(pfx("10.0.0.0/8"), pfx(ula), pfx("10.5.0.0/16"))
	require.NoError(t, err)

	tests := []struct {
		name string
		s    Subnets
		in   netip.Addr
		want netip.Addr
	}{
		{"host", s24, addr("10.20.1.200"), addr("fd3c:9a1e:77b2:1::c8")},
		{"gateway", s24, addr("10.20.1.1"), addr("fd3c:9a1e:77b2:1::1")},
		{"network address", s24, addr("10.20.1.0"), addr("fd3c:9a1e:77b2:1::")},
		{"broadcast address", s24, addr("10.20.1.255"), addr("fd3c:9a1e:77b2:1::ff")},
		{"IPv4-mapped input", s24, addr("::ffff:10.20.1.7"), addr("fd3c:9a1e:77b2:1::7")},
		{"two-byte offset in a /16", s16, addr("10.5.3.4"), addr("fd3c:9a1e:77b2:500::304")},
		{"outside the subnet", s24, addr("10.20.2.1"), netip.Addr{}},
		{"IPv6 input", s24, addr("fd3c:9a1e:77b2:1::5"), netip.Addr{}},
		{"zero input", s24, netip.Addr{}, netip.Addr{}},
		{"zero subnets", Subnets{}, addr("10.20.1.5"), netip.Addr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.s.Twin(tt.in))
		})
	}
}

func TestPlanSubnet(t *testing.T) {
	tests := []struct {
		name    string
		ipRange string
		bits    int
		taken   []string
		want    string
	}{
		{"empty range gives the first", "10.20.0.0/16", 24, nil, "10.20.0.0/24"},
		{"skips the first", "10.20.0.0/16", 24, []string{"10.20.0.0/24"}, "10.20.1.0/24"},
		{"fills a hole", "10.20.0.0/16", 24, []string{"10.20.0.0/24", "10.20.2.0/24", "10.20.1.0/24", "10.20.4.0/24"}, "10.20.3.0/24"},
		{"unsorted and duplicate taken", "10.20.0.0/16", 24, []string{"10.20.1.0/24", "10.20.0.0/24", "10.20.1.0/24"}, "10.20.2.0/24"},
		{"a small taken prefix blocks its whole candidate", "10.20.0.0/16", 24, []string{"10.20.0.128/25", "10.20.1.7/32"}, "10.20.2.0/24"},
		{"a large taken prefix blocks many candidates", "10.20.0.0/16", 24, []string{"10.20.0.0/20"}, "10.20.16.0/24"},
		{"a taken prefix covering the range start", "10.20.0.0/16", 24, []string{"10.0.0.0/12"}, "10.20.0.0/24"},
		{"taken outside the range are ignored", "10.20.0.0/16", 24, []string{"10.19.255.0/24", "10.21.0.0/24", "192.168.0.0/16"}, "10.20.0.0/24"},
		{"taken with host bits are masked", "10.20.0.0/16", 24, []string{"10.20.0.77/24"}, "10.20.1.0/24"},
		{"a nested taken inside a larger one", "10.20.0.0/16", 24, []string{"10.20.0.0/22", "10.20.1.0/24", "10.20.4.0/24"}, "10.20.5.0/24"},
		{"last candidate", "10.20.0.0/22", 24, []string{"10.20.0.0/24", "10.20.1.0/24", "10.20.2.0/24"}, "10.20.3.0/24"},
		{"subnet is the whole range", "10.20.0.0/24", 24, nil, "10.20.0.0/24"},
		{"/30 in a /24", "192.168.1.0/24", 30, []string{"192.168.1.0/30"}, "192.168.1.4/30"},
		{"top of the address space", "255.255.255.0/24", 26, []string{"255.255.255.0/25", "255.255.255.128/26"}, "255.255.255.192/26"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var taken []netip.Prefix
			for _, s := range tt.taken {
				taken = append(taken, pfx(s))
			}
			got, err := PlanSubnet(pfx(tt.ipRange), tt.bits, taken)
			require.NoError(t, err)
			assert.Equal(t, pfx(tt.want), got)
		})
	}
}

func TestPlanSubnetErrors(t *testing.T) {
	tests := []struct {
		name    string
		ipRange netip.Prefix
		bits    int
		taken   []netip.Prefix
		full    bool
	}{
		{"every candidate taken", pfx("10.20.0.0/22"), 24, []netip.Prefix{pfx("10.20.0.0/23"), pfx("10.20.2.0/24"), pfx("10.20.3.0/24")}, true},
		{"range covered by a larger taken", pfx("10.20.0.0/16"), 24, []netip.Prefix{pfx("10.0.0.0/8")}, true},
		{"last candidate blocked by a /32", pfx("255.255.255.0/24"), 25, []netip.Prefix{pfx("255.255.255.1/32"), pfx("255.255.255.255/32")}, true},
		{"bits shorter than the range", pfx("10.20.0.0/16"), 15, nil, false},
		{"bits longer than /30", pfx("10.20.0.0/16"), 31, nil, false},
		{"range is IPv6", pfx("fd00::/48"), 64, nil, false},
		{"range has host bits", pfx("10.20.0.1/16"), 24, nil, false},
		{"zero range", netip.Prefix{}, 24, nil, false},
		{"taken is IPv6", pfx("10.20.0.0/16"), 24, []netip.Prefix{pfx("fd00::/64")}, false},
		{"taken is zero", pfx("10.20.0.0/16"), 24, []netip.Prefix{{}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PlanSubnet(tt.ipRange, tt.bits, tt.taken)
			require.Error(t, err)
			assert.Equal(t, tt.full, errors.Is(err, ErrFull))
		})
	}
}

func TestDefaultSubnetBits(t *testing.T) {
	tests := []struct{ rangeBits, want int }{
		{4, 24}, {8, 24}, {16, 24}, {20, 24},
		{21, 25}, {22, 26}, {24, 28}, {26, 30}, {27, 30}, {30, 30},
	}
	for _, tt := range tests {
		t.Run("/"+strconv.Itoa(tt.rangeBits), func(t *testing.T) {
			assert.Equal(t, tt.want, DefaultSubnetBits(tt.rangeBits))
		})
	}
}
