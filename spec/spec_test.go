package spec_test

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/spec"
)

func decodeGood(t *testing.T) *spec.Spec {
	t.Helper()
	s, err := spec.Decode(marshal(t, goodDoc()), "")
	require.NoError(t, err)
	return s
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		bad  string
	}{
		{name: "a"},
		{name: "0"},
		{name: "node-1"},
		{name: "a--b"},
		{name: strings.Repeat("x", 32)},
		{name: "", bad: "empty"},
		{name: strings.Repeat("x", 33), bad: "too long (33 characters, max 32)"},
		{name: "Node1", bad: "bad character 'N' at position 0"},
		{name: "node_1", bad: "bad character '_'"},
		{name: "nöde", bad: "bad character 'ö'"},
		{name: "node 1", bad: "bad character ' '"},
		{name: "-node", bad: "start or end with '-'"},
		{name: "node-", bad: "start or end with '-'"},
		{name: "-", bad: "start or end with '-'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := spec.ValidName(tt.name)
			if tt.bad == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.bad)
		})
	}
}

func TestDeriveULA(t *testing.T) {
	a, b := spec.DeriveULA("shop"), spec.DeriveULA("shop")
	assert.Equal(t, a, b, "deterministic")
	assert.NotEqual(t, a, spec.DeriveULA("shop2"))
	for _, name := range []string{"shop", "a", "", strings.Repeat("z", 32)} {
		p := spec.DeriveULA(name)
		assert.Equal(t, 48, p.Bits(), name)
		assert.Equal(t, p, p.Masked(), name)
		assert.Equal(t, byte(0xfd), p.Addr().As16()[0], name)
		assert.True(t, netip.MustParsePrefix("fc00::/7").Contains(p.Addr()), name)
	}
	// Pin the derivation: the first 40 bits of sha256("shop") follow fd.
	assert.Equal(t, "fd8d:9001:d32c::/48", spec.DeriveULA("shop").String())
}

func TestSubnetIndex(t *testing.T) {
	tests := []struct {
		ipRange, subnet string
		want            int
	}{
		{"10.20.0.0/16", "10.20.0.0/24", 0},
		{"10.20.0.0/16", "10.20.1.0/24", 1},
		{"10.20.0.0/16", "10.20.255.0/24", 255},
		{"10.20.0.0/16", "10.20.1.0/26", 1},        // not 4: that is 10.20.4.0/24's
		{"10.20.0.0/16", "10.20.1.4/30", 256 + 65}, // off a /24 boundary: after the 256 /24s, in /30s
		{"10.20.0.0/16", "10.20.128.0/17", 128},
		{"10.20.0.0/16", "10.20.0.0/16", 0},
		{"10.0.0.0/8", "10.255.255.0/24", 65535},
		{"10.0.0.0/8", "10.255.255.252/30", -1}, // off a /24 boundary of a /8: no room
		{"10.20.0.0/22", "10.20.1.64/26", 5},    // a /22 counts in /26s
		{"10.0.0.0/7", "10.0.1.0/24", -1},       // too big to map
		{"10.20.0.0/16", "10.21.0.0/24", -1},
		{"10.20.0.0/16", "10.0.0.0/8", -1},
		{"10.20.0.0/16", "fd00::/64", -1},
		{"fd00::/48", "10.20.0.0/24", -1},
	}
	for _, tt := range tests {
		t.Run(tt.ipRange+" "+tt.subnet, func(t *testing.T) {
			got := subnetIndex(netip.MustParsePrefix(tt.ipRange), netip.MustParsePrefix(tt.subnet))
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNode(t *testing.T) {
	s := decodeGood(t)
	n, ok := s.Node("node2")
	require.True(t, ok)
	assert.Equal(t, "10.20.2.0/24", n.Subnet.String())
	_, ok = s.Node("node4")
	assert.False(t, ok)
}

func TestSetDefaults(t *testing.T) {
	s := &spec.Spec{Name: "shop"}
	s.SetDefaults()
	assert.Zero(t, s.MTU, "a missing MTU is left for each node to derive")
	assert.Equal(t, spec.DeriveULA("shop"), s.IPv6Range)

	set := &spec.Spec{Name: "shop", MTU: 1300, IPv6Range: netip.MustParsePrefix("fd01::/48")}
	set.SetDefaults()
	assert.Equal(t, 1300, set.MTU, "a set MTU stays")
	assert.Equal(t, "fd01::/48", set.IPv6Range.String(), "a set range stays")
}

func TestValidateWithoutDefaults(t *testing.T) {
	s := decodeGood(t)
	s.MTU = 0
	require.NoError(t, s.Validate(""), "a zero MTU is derived by each node")

	var fe *spec.FieldError
	s = decodeGood(t)
	s.IPv6Range = netip.Prefix{}
	require.ErrorAs(t, s.Validate(""), &fe)
	assert.Equal(t, "ipv6_range", fe.Field)

	s.SetDefaults()
	assert.NoError(t, s.Validate(""))
}

func TestValidateSelf(t *testing.T) {
	s := decodeGood(t)
	s.Nodes[2].PublicKey = ""
	assert.ErrorIs(t, s.Validate(""), spec.ErrInvalid)
	assert.ErrorIs(t, s.Validate("node1"), spec.ErrInvalid)
	assert.NoError(t, s.Validate("node3"))
}

func TestClone(t *testing.T) {
	s := decodeGood(t)
	c := s.Clone()
	require.Equal(t, s, c)
	c.Nodes[0].Endpoint = "198.18.0.9:1"
	c.Nodes = append(c.Nodes, spec.Node{ID: "node4"})
	c.Name = "other"
	assert.Equal(t, "198.18.0.1:40001", s.Nodes[0].Endpoint, "the clone does not share nodes")
	assert.Len(t, s.Nodes, 3)
	assert.Equal(t, "shop", s.Name)

	var nilSpec *spec.Spec
	assert.Nil(t, nilSpec.Clone())
	assert.Nil(t, (&spec.Spec{}).Clone().Nodes, "nil nodes stay nil")
}

func TestEqual(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *spec.Spec)
		equal  bool
	}{
		{name: "unchanged", change: func(*spec.Spec) {}, equal: true},
		// An explicit MTU and one each node derives are different specs.
		{name: "MTU left to the nodes", change: func(s *spec.Spec) { s.MTU = 0 }, equal: false},
		{name: "default range left zero", change: func(s *spec.Spec) {
			s.IPv6Range = netip.Prefix{}
		}, equal: false}, // the example's range is not the derived one
		{name: "members reordered", change: func(s *spec.Spec) {
			s.Nodes[0], s.Nodes[2] = s.Nodes[2], s.Nodes[0]
		}, equal: true},
		{name: "generation", change: func(s *spec.Spec) { s.Generation++ }, equal: false},
		{name: "name", change: func(s *spec.Spec) { s.Name = "shop2" }, equal: false},
		{name: "mtu", change: func(s *spec.Spec) { s.MTU = 1400 }, equal: false},
		{name: "endpoint", change: func(s *spec.Spec) { s.Nodes[1].Endpoint = "" }, equal: false},
		{name: "key", change: func(s *spec.Spec) { s.Nodes[1].PublicKey = key(7) }, equal: false},
		{name: "subnet", change: func(s *spec.Spec) { s.Nodes[1].Subnet = netip.MustParsePrefix("10.20.9.0/24") }, equal: false},
		{name: "member removed", change: func(s *spec.Spec) { s.Nodes = s.Nodes[:2] }, equal: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := decodeGood(t)
			o := s.Clone()
			tt.change(o)
			assert.Equal(t, tt.equal, s.Equal(o))
			assert.Equal(t, tt.equal, o.Equal(s), "symmetric")
		})
	}

	t.Run("derived range equals its default", func(t *testing.T) {
		doc := goodDoc()
		delete(doc, "ipv6_range")
		s, err := spec.Decode(marshal(t, doc), "")
		require.NoError(t, err)
		o := s.Clone()
		o.IPv6Range = netip.Prefix{}
		assert.True(t, s.Equal(o))
	})
	t.Run("nil", func(t *testing.T) {
		var a, b *spec.Spec
		assert.True(t, a.Equal(b))
		assert.False(t, a.Equal(decodeGood(t)))
		assert.False(t, decodeGood(t).Equal(nil))
	})
	t.Run("no members written either way", func(t *testing.T) {
		a := &spec.Spec{Name: "x"}
		b := &spec.Spec{Name: "x", Nodes: []spec.Node{}}
		assert.True(t, a.Equal(b))
	})
	t.Run("Equal does not change its operands", func(t *testing.T) {
		s := decodeGood(t)
		s.Nodes[0], s.Nodes[2] = s.Nodes[2], s.Nodes[0]
		s.MTU = 0
		before := s.Clone()
		s.Equal(decodeGood(t))
		assert.Equal(t, before, s)
	})
}

func TestMarshalShape(t *testing.T) {
	// The wire format other nodes and the CLI read: prefixes as text, optional
	// member fields left out when empty.
	s := decodeGood(t)
	s.Nodes[1].PublicKey = ""
	var got map[string]any
	require.NoError(t, json.Unmarshal(marshal(t, s), &got))
	assert.Equal(t, "10.20.0.0/16", got["ip_range"])
	assert.Equal(t, "fd3c:9a1e:77b2::/48", got["ipv6_range"])
	n := got["nodes"].([]any)
	assert.NotContains(t, n[1], "public_key")
	assert.NotContains(t, n[2], "endpoint")
	assert.Equal(t, "10.20.3.0/24", n[2].(map[string]any)["subnet"])
}
