package spec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/spec"
)

func TestDecodeBad(t *testing.T) {
	good := string(marshal(t, goodDoc()))
	tests := []struct {
		name   string
		raw    string                   // the document, when not built from goodDoc
		change func(doc map[string]any) // applied to goodDoc otherwise
		self   string
		field  string
		reason string // a substring of the reason, when it matters
	}{
		// Documents that are not one JSON object.
		{name: "empty", raw: "", reason: "empty"},
		{name: "only space", raw: " \n\t", reason: "empty"},
		{name: "truncated", raw: good[:len(good)/2], reason: "truncated"},
		{name: "truncated after brace", raw: "{", reason: "truncated"},
		{name: "malformed", raw: `{"name": shop}`, reason: "malformed"},
		{name: "trailing comma", raw: `{"name": "shop",}`, reason: "malformed"},
		{name: "trailing object", raw: good + " {}", reason: "trailing data"},
		{name: "trailing garbage", raw: good + "x", reason: "trailing data"},
		{name: "array", raw: "[]", reason: "must be a JSON object, not an array"},
		{name: "null", raw: "null", reason: "not null"},
		{name: "string", raw: `"shop"`, reason: "must be a JSON object"},
		{name: "over MaxSize", raw: good + strings.Repeat(" ", spec.MaxSize+1-len(good)), reason: "larger than"},

		// Unknown, repeated and mistyped fields.
		{name: "unknown field", raw: `{"name":"shop","colour":"red"}`, field: "colour", reason: "unknown field"},
		{name: "key in other case", raw: `{"Name":"shop"}`, field: "Name", reason: "unknown field"},
		{name: "unknown node field", change: func(d map[string]any) { node(d, 1)["port"] = 51820 }, field: "nodes[1].port", reason: "unknown field"},
		{name: "repeated field", raw: `{"name":"shop","name":"shop2"}`, field: "name", reason: "more than once"},
		{name: "repeated node field", raw: `{"nodes":[{"id":"a","id":"b"}]}`, field: "nodes[0].id", reason: "more than once"},
		{name: "name is a number", change: func(d map[string]any) { d["name"] = 7 }, field: "name", reason: "must be a string, not a number"},
		{name: "name is null", change: func(d map[string]any) { d["name"] = nil }, field: "name", reason: "must be a string, not null"},
		{name: "generation is a string", change: func(d map[string]any) { d["generation"] = "3" }, field: "generation", reason: "must be a number"},
		{name: "generation negative", change: func(d map[string]any) { d["generation"] = -1 }, field: "generation", reason: "whole number"},
		{name: "generation fraction", change: func(d map[string]any) { d["generation"] = 1.5 }, field: "generation", reason: "whole number"},
		{name: "generation exponent", raw: `{"generation": 1e3}`, field: "generation", reason: "whole number"},
		{name: "generation too big", raw: `{"generation": 18446744073709551616}`, field: "generation", reason: "whole number"},
		{name: "mtu is a string", change: func(d map[string]any) { d["mtu"] = "1420" }, field: "mtu", reason: "must be a number"},
		{name: "mtu is a bool", change: func(d map[string]any) { d["mtu"] = true }, field: "mtu", reason: "not a boolean"},
		{name: "egress is a string", change: func(d map[string]any) { d["egress"] = "true" }, field: "egress", reason: "must be true or false, not a string"},
		{name: "egress is null", change: func(d map[string]any) { d["egress"] = nil }, field: "egress", reason: "not null"},
		{name: "ip_range is a number", change: func(d map[string]any) { d["ip_range"] = 10 }, field: "ip_range", reason: "must be a string"},
		{name: "nodes is an object", change: func(d map[string]any) { d["nodes"] = map[string]any{} }, field: "nodes", reason: "must be an array"},
		{name: "nodes is null", change: func(d map[string]any) { d["nodes"] = nil }, field: "nodes", reason: "not null"},
		{name: "node is a string", change: func(d map[string]any) { d["nodes"] = []any{"node1"} }, field: "nodes[0]", reason: "must be an object"},
		{name: "public_key is a number", change: func(d map[string]any) { node(d, 2)["public_key"] = 1 }, field: "nodes[2].public_key", reason: "must be a string"},
		{name: "endpoint is a bool", change: func(d map[string]any) { node(d, 0)["endpoint"] = false }, field: "nodes[0].endpoint", reason: "must be a string"},

		// name and generation.
		{name: "name missing", change: func(d map[string]any) { delete(d, "name") }, field: "name", reason: "empty"},
		{name: "name upper case", change: func(d map[string]any) { d["name"] = "Shop" }, field: "name", reason: "bad character 'S'"},
		{name: "name too long", change: func(d map[string]any) { d["name"] = strings.Repeat("a", 33) }, field: "name", reason: "too long"},
		{name: "name leading dash", change: func(d map[string]any) { d["name"] = "-shop" }, field: "name", reason: "start or end"},
		{name: "name with dot", change: func(d map[string]any) { d["name"] = "shop.x" }, field: "name", reason: "bad character"},
		{name: "generation zero", change: func(d map[string]any) { d["generation"] = 0 }, field: "generation", reason: "at least 1"},
		{name: "generation missing", change: func(d map[string]any) { delete(d, "generation") }, field: "generation", reason: "at least 1"},

		// ip_range.
		{name: "ip_range missing", change: func(d map[string]any) { delete(d, "ip_range") }, field: "ip_range", reason: "required"},
		{name: "ip_range empty", change: func(d map[string]any) { d["ip_range"] = "" }, field: "ip_range", reason: "required"},
		{name: "ip_range not CIDR", change: func(d map[string]any) { d["ip_range"] = "10.20.0.0" }, field: "ip_range", reason: "not a CIDR prefix"},
		{name: "ip_range garbage", change: func(d map[string]any) { d["ip_range"] = "ten/16" }, field: "ip_range", reason: "not a CIDR prefix"},
		{name: "ip_range host bits", change: func(d map[string]any) { d["ip_range"] = "10.20.1.0/16" }, field: "ip_range", reason: "has host bits; did you mean 10.20.0.0/16?"},
		{name: "ip_range IPv6", change: func(d map[string]any) { d["ip_range"] = "fd00::/48" }, field: "ip_range", reason: "not an IPv4 prefix"},
		{name: "ip_range IPv4-mapped", change: func(d map[string]any) { d["ip_range"] = "::ffff:10.20.0.0/112" }, field: "ip_range", reason: "not an IPv4 prefix"},
		{name: "ip_range /0", change: func(d map[string]any) { d["ip_range"] = "0.0.0.0/0" }, field: "ip_range", reason: "/0 is out of range"},
		{name: "ip_range /32", change: func(d map[string]any) { d["ip_range"] = "10.20.0.0/32" }, field: "ip_range", reason: "/32 is out of range"},
		{name: "ip_range /29", change: func(d map[string]any) { d["ip_range"] = "10.20.0.0/29" }, field: "ip_range", reason: "out of range"},
		{name: "ip_range /7", change: func(d map[string]any) { d["ip_range"] = "8.0.0.0/7" }, field: "ip_range", reason: "out of range"},

		// ipv6_range.
		{name: "ipv6_range IPv4", change: func(d map[string]any) { d["ipv6_range"] = "10.0.0.0/8" }, field: "ipv6_range", reason: "not an IPv6 prefix"},
		{name: "ipv6_range not ULA", change: func(d map[string]any) { d["ipv6_range"] = "2001:db8:1::/48" }, field: "ipv6_range", reason: "unique local"},
		{name: "ipv6_range /64", change: func(d map[string]any) { d["ipv6_range"] = "fd3c:9a1e:77b2::/64" }, field: "ipv6_range", reason: "/48"},
		{name: "ipv6_range /0", change: func(d map[string]any) { d["ipv6_range"] = "::/0" }, field: "ipv6_range", reason: "/48"},
		{name: "ipv6_range host bits", change: func(d map[string]any) { d["ipv6_range"] = "fd3c:9a1e:77b2:1::/48" }, field: "ipv6_range", reason: "did you mean fd3c:9a1e:77b2::/48?"},
		{name: "ipv6_range zone", change: func(d map[string]any) { d["ipv6_range"] = "fd3c:9a1e:77b2::%eth0/48" }, field: "ipv6_range", reason: "not a CIDR prefix"},

		// mtu.
		{name: "mtu too small", change: func(d map[string]any) { d["mtu"] = 1279 }, field: "mtu", reason: "out of range"},
		{name: "mtu too big", change: func(d map[string]any) { d["mtu"] = 9001 }, field: "mtu", reason: "out of range"},
		{name: "mtu negative", change: func(d map[string]any) { d["mtu"] = -1420 }, field: "mtu", reason: "out of range"},

		// nodes.
		{name: "nodes missing", change: func(d map[string]any) { delete(d, "nodes") }, field: "nodes", reason: "at least one"},
		{name: "nodes empty", change: func(d map[string]any) { d["nodes"] = []any{} }, field: "nodes", reason: "at least one"},
		{name: "id missing", change: func(d map[string]any) { delete(node(d, 0), "id") }, field: "nodes[0].id", reason: "empty"},
		{name: "id bad", change: func(d map[string]any) { node(d, 2)["id"] = "node_3" }, field: "nodes[2].id", reason: "bad character '_'"},
		{name: "id trailing dash", change: func(d map[string]any) { node(d, 2)["id"] = "node-" }, field: "nodes[2].id", reason: "start or end"},
		{name: "id duplicate", change: func(d map[string]any) { node(d, 2)["id"] = "node1" }, field: "nodes[2].id", reason: "duplicate of nodes[0].id"},

		// subnets.
		{name: "subnet missing", change: func(d map[string]any) { delete(node(d, 1), "subnet") }, field: "nodes[1].subnet", reason: "required"},
		{name: "subnet not CIDR", change: func(d map[string]any) { node(d, 1)["subnet"] = "10.20.2.0/" }, field: "nodes[1].subnet", reason: "not a CIDR prefix"},
		{name: "subnet IPv6", change: func(d map[string]any) { node(d, 1)["subnet"] = "fd3c:9a1e:77b2:2::/64" }, field: "nodes[1].subnet", reason: "not an IPv4 prefix"},
		{name: "subnet host bits", change: func(d map[string]any) { node(d, 1)["subnet"] = "10.20.2.1/24" }, field: "nodes[1].subnet", reason: "did you mean 10.20.2.0/24?"},
		{name: "subnet /31", change: func(d map[string]any) { node(d, 1)["subnet"] = "10.20.2.0/31" }, field: "nodes[1].subnet", reason: "too long"},
		{name: "subnet /32", change: func(d map[string]any) { node(d, 1)["subnet"] = "10.20.2.1/32" }, field: "nodes[1].subnet", reason: "too long"},
		{name: "subnet outside range", change: func(d map[string]any) { node(d, 1)["subnet"] = "10.21.2.0/24" }, field: "nodes[1].subnet", reason: "not inside ip_range 10.20.0.0/16"},
		{name: "subnet larger than range", change: func(d map[string]any) { node(d, 0)["subnet"] = "10.0.0.0/8" }, field: "nodes[0].subnet", reason: "not inside"},
		{name: "subnet overlaps", change: func(d map[string]any) { node(d, 1)["subnet"] = "10.20.1.0/24" }, field: "nodes[1].subnet", reason: "overlaps nodes[0].subnet (10.20.1.0/24)"},
		{name: "subnet contains earlier", change: func(d map[string]any) { node(d, 2)["subnet"] = "10.20.0.0/22" }, field: "nodes[2].subnet", reason: "overlaps nodes[0].subnet"},
		{name: "subnet inside earlier that holds a later one", change: func(d map[string]any) { node(d, 0)["subnet"] = "10.20.0.0/22" }, field: "nodes[1].subnet", reason: "overlaps nodes[0].subnet (10.20.0.0/22)"},
		{name: "subnet inside earlier", change: func(d map[string]any) { node(d, 2)["subnet"] = "10.20.2.128/25" }, field: "nodes[2].subnet", reason: "overlaps nodes[1].subnet"},
		{name: "subnet off a /24 boundary of a /8", change: func(d map[string]any) {
			d["ip_range"] = "10.0.0.0/8"
			node(d, 2)["subnet"] = "10.20.3.64/26"
		}, field: "nodes[2].subnet", reason: "does not start on a /24 boundary, and range 10.0.0.0/8 is too big to give it an IPv6 /64 of its own"},

		// public keys.
		{name: "key missing", change: func(d map[string]any) { delete(node(d, 1), "public_key") }, field: "nodes[1].public_key", reason: "required"},
		{name: "key missing for another node", self: "node1", change: func(d map[string]any) { delete(node(d, 1), "public_key") }, field: "nodes[1].public_key", reason: "required"},
		{name: "key not base64", change: func(d map[string]any) { node(d, 0)["public_key"] = "not a key!" }, field: "nodes[0].public_key", reason: "base64"},
		{name: "key URL base64", change: func(d map[string]any) {
			node(d, 0)["public_key"] = strings.Repeat("-_", 21) + "w="
		}, field: "nodes[0].public_key", reason: "base64"},
		{name: "key 31 bytes", change: func(d map[string]any) { node(d, 0)["public_key"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==" }, field: "nodes[0].public_key", reason: "want 32"},
		{name: "key 33 bytes", change: func(d map[string]any) { node(d, 0)["public_key"] = strings.Repeat("A", 44) }, field: "nodes[0].public_key", reason: "want 32"},
		{name: "key unpadded", change: func(d map[string]any) { node(d, 0)["public_key"] = strings.TrimSuffix(key(1), "=") }, field: "nodes[0].public_key", reason: "base64"},
		{name: "key with newline", change: func(d map[string]any) { node(d, 0)["public_key"] = key(1)[:20] + "\n" + key(1)[20:] }, field: "nodes[0].public_key", reason: "canonical"},
		{name: "key not canonical", change: func(d map[string]any) {
			k := []byte(key(1)) // last data character carries 2 unused bits
			k[42]++
			node(d, 0)["public_key"] = string(k)
		}, field: "nodes[0].public_key", reason: "canonical"},
		{name: "key duplicate", change: func(d map[string]any) { node(d, 2)["public_key"] = key(2) }, field: "nodes[2].public_key", reason: "duplicate of nodes[1].public_key"},

		// endpoints.
		{name: "endpoint without port", change: func(d map[string]any) { node(d, 0)["endpoint"] = "198.18.0.1" }, field: "nodes[0].endpoint", reason: "missing port"},
		{name: "endpoint empty port", change: func(d map[string]any) { node(d, 0)["endpoint"] = "198.18.0.1:" }, field: "nodes[0].endpoint", reason: "missing port"},
		{name: "endpoint port 0", change: func(d map[string]any) { node(d, 0)["endpoint"] = "198.18.0.1:0" }, field: "nodes[0].endpoint", reason: "out of range"},
		{name: "endpoint port 65536", change: func(d map[string]any) { node(d, 0)["endpoint"] = "198.18.0.1:65536" }, field: "nodes[0].endpoint", reason: "out of range"},
		{name: "endpoint port not a number", change: func(d map[string]any) { node(d, 0)["endpoint"] = "198.18.0.1:wg" }, field: "nodes[0].endpoint", reason: "not a number"},
		{name: "endpoint garbage", change: func(d map[string]any) { node(d, 0)["endpoint"] = "!!:1" }, field: "nodes[0].endpoint", reason: "bad character"},
		{name: "endpoint bad IPv4", change: func(d map[string]any) { node(d, 0)["endpoint"] = "198.18.0.300:51820" }, field: "nodes[0].endpoint", reason: "not a valid IPv4"},
		{name: "endpoint IPv6 without brackets", change: func(d map[string]any) { node(d, 0)["endpoint"] = "fd00::1:51820" }, field: "nodes[0].endpoint", reason: "brackets"},
		{name: "endpoint IPv4 in brackets", change: func(d map[string]any) { node(d, 0)["endpoint"] = "[198.18.0.1]:51820" }, field: "nodes[0].endpoint", reason: "not an IPv6"},
		{name: "endpoint URL", change: func(d map[string]any) { node(d, 0)["endpoint"] = "udp://198.18.0.1:51820" }, field: "nodes[0].endpoint", reason: "neither an IP address nor a host name"},
	}
	require.GreaterOrEqual(t, len(tests), 35)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.raw)
			if tt.change != nil {
				doc := goodDoc()
				tt.change(doc)
				data = marshal(t, doc)
			}
			s, err := spec.Decode(data, tt.self)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.ErrorIs(t, err, spec.ErrInvalid)
			var fe *spec.FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.field, fe.Field, "reason: %s", fe.Reason)
			assert.Contains(t, fe.Reason, tt.reason)
			assert.NotEmpty(t, fe.Reason)
		})
	}
}

func TestFieldErrorMessage(t *testing.T) {
	doc := goodDoc()
	node(doc, 1)["subnet"] = "10.20.1.0/24"
	_, err := spec.Decode(marshal(t, doc), "")
	require.EqualError(t, err, "nodes[1].subnet: overlaps nodes[0].subnet (10.20.1.0/24)")

	whole := &spec.FieldError{Reason: "empty document"}
	assert.Equal(t, "empty document", whole.Error())
	assert.True(t, errors.Is(whole, spec.ErrInvalid))
	assert.False(t, errors.Is(whole, errors.New("invalid spec")))
}

func TestDecodeGood(t *testing.T) {
	tests := []struct {
		name   string
		change func(doc map[string]any)
		self   string
		check  func(t *testing.T, s *spec.Spec)
	}{
		{
			name: "design example",
			check: func(t *testing.T, s *spec.Spec) {
				want := &spec.Spec{
					Name:       "shop",
					Generation: 3,
					IPRange:    netip.MustParsePrefix("10.20.0.0/16"),
					IPv6Range:  netip.MustParsePrefix("fd3c:9a1e:77b2::/48"),
					MTU:        1420,
					Nodes: []spec.Node{
						{ID: "node1", Subnet: netip.MustParsePrefix("10.20.1.0/24"), PublicKey: key(1), Endpoint: "198.18.0.1:40001"},
						{ID: "node2", Subnet: netip.MustParsePrefix("10.20.2.0/24"), PublicKey: key(2), Endpoint: "198.18.0.2:40007"},
						{ID: "node3", Subnet: netip.MustParsePrefix("10.20.3.0/24"), PublicKey: key(3)},
					},
				}
				assert.Equal(t, want, s)
			},
		},
		{
			name: "defaults filled",
			change: func(d map[string]any) {
				delete(d, "ipv6_range")
				delete(d, "mtu")
			},
			check: func(t *testing.T, s *spec.Spec) {
				assert.Zero(t, s.MTU, "left for each node to derive")
				assert.Equal(t, spec.DeriveULA("shop"), s.IPv6Range)
			},
		},
		{
			name:   "egress read, absent means none",
			change: func(d map[string]any) { d["egress"] = true },
			check: func(t *testing.T, s *spec.Spec) {
				assert.True(t, s.Egress)
				assert.False(t, (&spec.Spec{}).Egress)
			},
		},
		{
			name: "empty ipv6_range and zero mtu mean default",
			change: func(d map[string]any) {
				d["ipv6_range"] = ""
				d["mtu"] = 0
			},
			check: func(t *testing.T, s *spec.Spec) {
				assert.Zero(t, s.MTU)
				assert.Equal(t, spec.DeriveULA("shop"), s.IPv6Range)
			},
		},
		{
			name:   "self may omit its key",
			self:   "node2",
			change: func(d map[string]any) { delete(node(d, 1), "public_key") },
			check: func(t *testing.T, s *spec.Spec) {
				n, ok := s.Node("node2")
				require.True(t, ok)
				assert.Empty(t, n.PublicKey)
			},
		},
		{
			name: "single node, no endpoints, limits",
			change: func(d map[string]any) {
				d["name"] = "a"
				d["generation"] = uint64(1<<64 - 1)
				d["ip_range"] = "192.168.7.16/28"
				d["mtu"] = 9000
				d["nodes"] = []any{map[string]any{"id": "0", "subnet": "192.168.7.28/30", "public_key": key(9)}}
			},
			check: func(t *testing.T, s *spec.Spec) {
				assert.Equal(t, uint64(1<<64-1), s.Generation)
				assert.Equal(t, 9000, s.MTU)
				require.Len(t, s.Nodes, 1)
				assert.Equal(t, 3, subnetIndex(s.IPRange, s.Nodes[0].Subnet))
			},
		},
		{
			name: "wide range, last subnet index that fits",
			change: func(d map[string]any) {
				d["name"] = strings.Repeat("z", 32)
				d["ip_range"] = "10.0.0.0/8"
				d["mtu"] = 1280
				node(d, 0)["subnet"] = "10.255.255.0/24"
				node(d, 1)["subnet"] = "10.0.0.0/30"
				node(d, 2)["subnet"] = "10.1.0.0/16"
			},
			check: func(t *testing.T, s *spec.Spec) {
				assert.Equal(t, 65535, subnetIndex(s.IPRange, s.Nodes[0].Subnet))
			},
		},
		{
			name: "subnets of different sizes",
			change: func(d map[string]any) {
				node(d, 0)["subnet"] = "10.20.4.0/24"
				node(d, 1)["subnet"] = "10.20.1.0/26"
				node(d, 2)["subnet"] = "10.20.1.64/26"
			},
			check: func(t *testing.T, s *spec.Spec) {
				assert.Equal(t, 4, subnetIndex(s.IPRange, s.Nodes[0].Subnet))
				assert.Equal(t, 1, subnetIndex(s.IPRange, s.Nodes[1].Subnet))
				assert.Equal(t, 256+(256+64)/4, subnetIndex(s.IPRange, s.Nodes[2].Subnet)) // after the /24s, in /30s
			},
		},
		{
			name: "host name and IPv6 endpoints",
			change: func(d map[string]any) {
				node(d, 0)["endpoint"] = "Node-1.example.com:65535"
				node(d, 1)["endpoint"] = "[2001:db8::1]:1"
				node(d, 2)["endpoint"] = "localhost:51820"
			},
			check: func(t *testing.T, s *spec.Spec) {
				assert.Equal(t, "[2001:db8::1]:1", s.Nodes[1].Endpoint)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := goodDoc()
			if tt.change != nil {
				tt.change(doc)
			}
			s, err := spec.Decode(marshal(t, doc), tt.self)
			require.NoError(t, err)
			require.NoError(t, s.Validate(tt.self))
			tt.check(t, s)

			// JSON round trip: the marshalled spec decodes to the same spec.
			again, err := spec.Decode(marshal(t, s), tt.self)
			require.NoError(t, err)
			assert.Equal(t, s, again)
			assert.True(t, s.Equal(again))
		})
	}
}

func TestDecodeLayout(t *testing.T) {
	good := marshal(t, goodDoc())
	tests := []struct {
		name string
		data []byte
	}{
		{name: "indented", data: func() []byte {
			var b bytes.Buffer
			require.NoError(t, json.Indent(&b, good, "", "  "))
			return b.Bytes()
		}()},
		{name: "surrounding white space", data: []byte("\r\n\t " + string(good) + " \n")},
		{name: "exactly MaxSize", data: append(bytes.Clone(good), bytes.Repeat([]byte(" "), spec.MaxSize-len(good))...)},
		{name: "escaped characters", data: bytes.Replace(good, []byte(`"shop"`), []byte(`"\u0073hop"`), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := spec.Decode(tt.data, "")
			require.NoError(t, err)
			want, err := spec.Decode(good, "")
			require.NoError(t, err)
			assert.Equal(t, want, s)
		})
	}
}
