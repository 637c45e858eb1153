package dnsresolver

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigNormalized(t *testing.T) {
	in := testConfig()
	in.Network, in.NodeID = "SHOP", "N1"
	in.Gateway4 = netip.MustParseAddr("::ffff:10.20.1.1")
	in.IPRange = netip.MustParsePrefix("10.20.7.0/16")
	in.Members[0], in.Members[1] = in.Members[1], in.Members[0]
	in.Members[0].ID = "N3"
	in.Local[0].Name = "Web"
	in.Hold = []string{"N3", "n2"}
	got, err := in.normalized()
	require.NoError(t, err)
	want := testConfig()
	want.Local[0], want.Local[1] = want.Local[1], want.Local[0] // sorted by name
	want.Hold = []string{"n2", "n3"}                            // lower case, sorted
	assert.Equal(t, want, got)
	again, err := got.normalized()
	require.NoError(t, err)
	assert.Equal(t, got, again, "normalizing twice changes nothing")
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
	}{
		{name: "empty network", edit: func(c *Config) { c.Network = "" }},
		{name: "network with a dot", edit: func(c *Config) { c.Network = "shop.internal" }},
		{name: "node id with underscore", edit: func(c *Config) { c.NodeID = "n_1" }},
		{name: "node id ends with a dash", edit: func(c *Config) { c.NodeID = "n1-" }},
		{name: "label too long", edit: func(c *Config) { c.NodeID = string(make([]byte, 64)) }},
		{name: "no gateway", edit: func(c *Config) { c.Gateway4, c.Gateway6 = netip.Addr{}, netip.Addr{} }},
		{name: "IPv6 gateway in the IPv4 field", edit: func(c *Config) { c.Gateway4 = netip.MustParseAddr("fd3c:9a1e:77b2:1::1") }},
		{name: "IPv4 gateway in the IPv6 field", edit: func(c *Config) { c.Gateway6 = netip.MustParseAddr("10.20.1.1") }},
		{name: "mapped IPv6 gateway", edit: func(c *Config) { c.Gateway6 = netip.MustParseAddr("::ffff:10.20.1.1") }},
		{name: "gateway with a zone", edit: func(c *Config) { c.Gateway6 = netip.MustParseAddr("fd3c:9a1e:77b2:1::1%eth0") }},
		{name: "gateway outside the range", edit: func(c *Config) { c.Gateway4 = netip.MustParseAddr("10.21.1.1") }},
		{name: "IPv6 range that is IPv4", edit: func(c *Config) { c.IPv6Range = netip.MustParsePrefix("10.0.0.0/8") }},
		{name: "IPv4 range that is IPv6", edit: func(c *Config) { c.IPRange = netip.MustParsePrefix("fd00::/8") }},
		{name: "member twice", edit: func(c *Config) { c.Members = append(c.Members, c.Members[0]) }},
		{name: "member is this node", edit: func(c *Config) { c.Members[0].ID = "n1" }},
		{name: "member without gateway", edit: func(c *Config) { c.Members[1].Gateway4 = netip.Addr{} }},
		{name: "member gateway outside the range", edit: func(c *Config) { c.Members[1].Gateway4 = netip.MustParseAddr("192.0.2.1") }},
		{name: "member with this node's gateway", edit: func(c *Config) { c.Members[1].Gateway4 = c.Gateway4 }},
		{name: "members sharing a gateway", edit: func(c *Config) { c.Members[1].Gateway4 = c.Members[0].Gateway4 }},
		{name: "bad member id", edit: func(c *Config) { c.Members[0].ID = "a.b" }},
		{name: "member subnet of the wrong family", edit: func(c *Config) { c.Members[0].Subnet4 = c.Members[0].Subnet6 }},
		{name: "member subnet outside the range", edit: func(c *Config) { c.Members[1].Subnet4 = netip.MustParsePrefix("10.21.3.0/24") }},
		{name: "member subnet larger than the range", edit: func(c *Config) { c.Members[0].Subnet6 = netip.MustParsePrefix("fd3c:9a1e::/32") }},
		{name: "member subnet without its gateway", edit: func(c *Config) { c.Members[0].Subnet6 = netip.MustParsePrefix("fd3c:9a1e:77b2:3::/64") }},
		{name: "workload twice", edit: func(c *Config) { c.Local = append(c.Local, c.Local[0]) }},
		{name: "workload twice in another case", edit: func(c *Config) {
			c.Local = append(c.Local, Record{Name: "WEB", IPv4: netip.MustParseAddr("10.20.1.9")})
		}},
		{name: "workload without address", edit: func(c *Config) { c.Local[1].IPv4 = netip.Addr{} }},
		{name: "workload outside the IPv6 range", edit: func(c *Config) { c.Local[0].IPv6 = netip.MustParseAddr("fd00::5") }},
		{name: "workload name with a dot", edit: func(c *Config) { c.Local[0].Name = "web.x" }},
		{name: "workload name with an underscore", edit: func(c *Config) { c.Local[0].Name = "_local" }},
		{name: "held member id not a label", edit: func(c *Config) { c.Hold = []string{"n_2"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.edit(&c)
			_, err := c.normalized()
			require.ErrorIs(t, err, ErrInvalidConfig)
			_, err = newResolver(c, nil, Options{})
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
}

func TestConfigWithoutRanges(t *testing.T) {
	c := testConfig()
	c.IPRange, c.IPv6Range = netip.Prefix{}, netip.Prefix{}
	c.Local = append(c.Local, Record{Name: "far", IPv4: netip.MustParseAddr("192.0.2.1")})
	_, err := c.normalized()
	require.NoError(t, err, "without ranges any address of the right family goes")
}

func TestNextSerial(t *testing.T) {
	a := nextSerial(0)
	b := nextSerial(a)
	assert.Greater(t, int32(b-a), int32(0), "later")
	ahead := a + 1<<20 // a previous run that counted ahead of the clock
	assert.Equal(t, ahead+1, nextSerial(ahead))
}
