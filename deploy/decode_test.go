package deploy

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validDoc is a deployment of three nodes, the last one hidden.
const validDoc = `{
  "name": "shop",
  "ip_range": "10.20.0.0/16",
  "mtu": 1420,
  "subnet_bits": 24,
  "egress": true,
  "nodes": [
    {"id": "node1", "api": "unix:///run/znet/n1.sock", "endpoint_host": "198.18.0.1"},
    {"id": "node2", "api": "unix:///run/znet/n2.sock", "endpoint_host": "fd00::2"},
    {"id": "node3", "api": "unix:///run/znet/n3.sock", "hidden": true}
  ]
}`

func TestDecodeValid(t *testing.T) {
	d, err := Decode([]byte(validDoc))
	require.NoError(t, err)
	want := &Deployment{
		Name: "shop", IPRange: netip.MustParsePrefix("10.20.0.0/16"), MTU: 1420, SubnetBits: 24, Egress: true,
		Nodes: []NodeRef{
			{ID: "node1", API: "unix:///run/znet/n1.sock", EndpointHost: "198.18.0.1"},
			{ID: "node2", API: "unix:///run/znet/n2.sock", EndpointHost: "fd00::2"},
			{ID: "node3", API: "unix:///run/znet/n3.sock", Hidden: true},
		},
	}
	assert.Equal(t, want, d)

	socket, err := d.Nodes[0].Socket()
	require.NoError(t, err)
	assert.Equal(t, "/run/znet/n1.sock", socket)
	assert.Equal(t, "198.18.0.1:40001", d.Nodes[0].Endpoint(40001))
	assert.Equal(t, "[fd00::2]:40001", d.Nodes[1].Endpoint(40001))
	assert.Equal(t, "", d.Nodes[2].Endpoint(40001))
	assert.Equal(t, "[fd00::2]:7", NodeRef{EndpointHost: "[fd00::2]"}.Endpoint(7))
	assert.Equal(t, "node.example:7", NodeRef{EndpointHost: "node.example"}.Endpoint(7))

	// What Decode returns encodes to a document Decode reads back the same.
	b, err := json.Marshal(d)
	require.NoError(t, err)
	again, err := Decode(b)
	require.NoError(t, err)
	assert.Equal(t, d, again)
}

func TestDecodeHTTPSNode(t *testing.T) {
	d, err := Decode([]byte(doc(t, `"api": "unix:///run/znet/n2.sock"`,
		`"api": "https://node2.example:8443", "token_file": "/etc/znet/n2.token", "ca_file": "/etc/znet/ca.pem"`)))
	require.NoError(t, err)
	n := d.Nodes[1]
	assert.Equal(t, NodeRef{ID: "node2", API: "https://node2.example:8443", TokenFile: "/etc/znet/n2.token",
		CAFile: "/etc/znet/ca.pem", EndpointHost: "fd00::2"}, n)
	assert.True(t, n.IsHTTPS())
	assert.False(t, d.Nodes[0].IsHTTPS())
	_, err = n.Socket()
	require.Error(t, err, "an https API has no socket")

	b, err := json.Marshal(d)
	require.NoError(t, err)
	again, err := Decode(b)
	require.NoError(t, err)
	assert.Equal(t, d, again)
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deploy.json")
	require.NoError(t, os.WriteFile(path, []byte(validDoc), 0o600))
	d, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, "shop", d.Name)

	_, err = Load(filepath.Join(dir, "missing.json"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// doc returns validDoc with old replaced by new (which must be there).
func doc(t *testing.T, old, new string) string {
	t.Helper()
	require.Contains(t, validDoc, old)
	return strings.Replace(validDoc, old, new, 1)
}

func TestDecodeErrors(t *testing.T) {
	n1 := `{"id": "node1", "api": "unix:///run/znet/n1.sock", "endpoint_host": "198.18.0.1"}`
	tests := []struct {
		name, doc, want string
	}{
		{"empty", ``, "empty document"},
		{"not an object", `[1]`, "must be an object, not an array"},
		{"malformed", `{"name": `, "malformed JSON"},
		{"trailing data", validDoc + ` {}`, "trailing data after the JSON object"},
		{"unknown field", doc(t, `"mtu": 1420`, `"mtu": 1420, "colour": "red"`), "colour: unknown field"},
		{"repeated field", doc(t, `"mtu": 1420`, `"mtu": 1420, "mtu": 1400`), "mtu: field appears more than once"},
		{"unknown node field", doc(t, `"hidden": true`, `"hidden": true, "port": 1`), "nodes[2].port: unknown field"},
		{"name of the wrong type", doc(t, `"name": "shop"`, `"name": 7`), "name: must be a string, not a number"},
		{"bad name", doc(t, `"name": "shop"`, `"name": "Shop!"`), "name: "},
		{"missing ip_range", doc(t, `"ip_range": "10.20.0.0/16",`, ``), "ip_range: is required"},
		{"ip_range not a prefix", doc(t, `"10.20.0.0/16"`, `"10.20.0.0"`), `ip_range: "10.20.0.0" is not a CIDR prefix`},
		{"ip_range with host bits", doc(t, `"10.20.0.0/16"`, `"10.20.0.1/16"`), "ip_range: 10.20.0.1/16 has host bits"},
		{"ipv6_range not a ULA /48", doc(t, `"mtu": 1420`, `"mtu": 1420, "ipv6_range": "2001:db8::/48"`), "ipv6_range: "},
		{"egress not a boolean", doc(t, `"egress": true`, `"egress": "yes"`), "egress: must be true or false, not a string"},
		{"mtu too small", doc(t, `"mtu": 1420`, `"mtu": 500`), "mtu: 500 is out of range"},
		{"mtu not a number", doc(t, `"mtu": 1420`, `"mtu": "1420"`), "mtu: must be a number, not a string"},
		{"mtu not whole", doc(t, `"mtu": 1420`, `"mtu": 1420.5`), "mtu: must be a positive whole number"},
		{"subnet_bits shorter than the range", doc(t, `"subnet_bits": 24`, `"subnet_bits": 8`), "subnet_bits: 8 is out of range for 10.20.0.0/16 (16..30)"},
		{"subnet_bits longer than /30", doc(t, `"subnet_bits": 24`, `"subnet_bits": 31`), "subnet_bits: 31 is out of range"},
		{"nodes not an array", doc(t, `"nodes": [`, `"nodes": {"a": [`) + `}`, "nodes: must be an array, not an object"},
		{"no nodes", `{"name": "shop", "ip_range": "10.20.0.0/16", "nodes": []}`, "nodes: at least one node is required"},
		{"node not an object", `{"name": "shop", "ip_range": "10.20.0.0/16", "nodes": ["node1"]}`, "nodes[0]: must be an object, not a string"},
		{"bad id", doc(t, `"id": "node2"`, `"id": "Node_2"`), "nodes[1].id: "},
		{"duplicate ids", doc(t, `"id": "node2"`, `"id": "node1"`), `nodes[1].id: "node1" is also nodes[0]'s id`},
		{"missing api", `{"name": "shop", "ip_range": "10.20.0.0/16", "nodes": [{"id": "a", "hidden": true}]}`, "nodes[0].api: is required"},
		{"https api without token_file", doc(t, `"unix:///run/znet/n2.sock"`, `"https://node2.example:8443"`), "nodes[1].token_file: is required for an https API"},
		{"https api without port", doc(t, `"unix:///run/znet/n2.sock"`, `"https://node2.example", "token_file": "/t"`), `nodes[1].api: "https://node2.example": want https://host:port`},
		{"https api with port 0", doc(t, `"unix:///run/znet/n2.sock"`, `"https://node2.example:0", "token_file": "/t"`), "the port must be 1-65535"},
		{"https api with a path", doc(t, `"unix:///run/znet/n2.sock"`, `"https://node2.example:8443/v1", "token_file": "/t"`), "an https API URL has only a host and a port"},
		{"https api with a user", doc(t, `"unix:///run/znet/n2.sock"`, `"https://me@node2.example:8443", "token_file": "/t"`), "an https API URL has only a host and a port"},
		{"token_file not a string", doc(t, `"unix:///run/znet/n2.sock"`, `"https://node2.example:8443", "token_file": 1`), "nodes[1].token_file: must be a string"},
		{"ca_file with a unix api", doc(t, `"hidden": true`, `"hidden": true, "ca_file": "/etc/znet/ca.pem"`), "nodes[2].ca_file: is only for https APIs"},
		{"http api", doc(t, `"unix:///run/znet/n2.sock"`, `"http://node2.example"`), "nodes[1].api: \"http://node2.example\": want unix:///"},
		{"relative unix api", doc(t, `"unix:///run/znet/n2.sock"`, `"unix://n2.sock"`), "nodes[1].api: \"unix://n2.sock\": the socket path must be absolute"},
		{"unix api with a query", doc(t, `"unix:///run/znet/n2.sock"`, `"unix:///run/znet/n2.sock?x=1"`), "a unix API URL has only a path"},
		{"unclean unix api", doc(t, `"unix:///run/znet/n2.sock"`, `"unix:///run/../n2.sock"`), "not clean"},
		{"duplicate api", doc(t, `"unix:///run/znet/n2.sock"`, `"unix:///run/znet/n1.sock"`), "nodes[1].api: unix:///run/znet/n1.sock is also nodes[0]'s API"},
		{"token_file with a unix api", doc(t, `"hidden": true`, `"hidden": true, "token_file": "/etc/znet/token"`), "nodes[2].token_file: is only for https APIs"},
		{"missing endpoint_host", doc(t, `, "endpoint_host": "fd00::2"`, ``), `nodes[1].endpoint_host: is required (or "hidden": true`},
		{"endpoint_host and hidden", doc(t, `"hidden": true`, `"hidden": true, "endpoint_host": "198.18.0.3"`), "nodes[2].endpoint_host: a hidden node has no endpoint"},
		{"hidden false needs endpoint_host", doc(t, `"hidden": true`, `"hidden": false`), "nodes[2].endpoint_host: is required"},
		{"hidden not a boolean", doc(t, `"hidden": true`, `"hidden": "yes"`), "nodes[2].hidden: must be true or false, not a string"},
		{"bad endpoint_host", doc(t, `"198.18.0.1"`, `"300.1.1.1"`), `nodes[0].endpoint_host: "300.1.1.1": host "300.1.1.1" is not a valid IPv4 address`},
		{"endpoint_host with a port", doc(t, `"198.18.0.1"`, `"198.18.0.1:51820"`), "nodes[0].endpoint_host: "},
		{"endpoint_host with a space", doc(t, `"198.18.0.1"`, `"198.18.0.1 x"`), "nodes[0].endpoint_host: "},
		{"unspecified endpoint_host", doc(t, `"198.18.0.1"`, `"0.0.0.0"`), "nodes[0].endpoint_host: 0.0.0.0 cannot be reached"},
		{"first node is checked too", `{"name": "shop", "ip_range": "10.20.0.0/16", "nodes": [` + n1 + `, {"id": "b"}]}`, "nodes[1].api: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decode([]byte(tt.doc))
			require.Error(t, err)
			assert.Nil(t, d)
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "%T is not a *FieldError", err)
			require.ErrorIs(t, err, ErrInvalid)
			assert.True(t, strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), tt.want),
				"error %q does not say %q", err, tt.want)
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	big := `{"name": "` + strings.Repeat("a", MaxSize) + `"}`
	_, err := Decode([]byte(big))
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "larger than the limit")
}

// FuzzDecode checks that Decode either refuses a document with a
// *FieldError or returns a valid deployment that survives a round trip.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(validDoc))
	// A single hidden node, the smallest useful deployment.
	f.Add([]byte(`{"name":"a","ip_range":"10.0.0.0/8","nodes":[{"id":"x","api":"unix:///s","hidden":true}]}`))
	// An https API with a token file and a CA file.
	f.Add([]byte(`{"name":"a","ip_range":"10.0.0.0/8","nodes":[{"id":"x","api":"https://h:1","token_file":"/t","ca_file":"/c","hidden":true}]}`))
	// An https API without a port.
	f.Add([]byte(`{"name":"a","ip_range":"10.0.0.0/8","nodes":[{"id":"x","api":"https://h:1","token_file":"/t","hidden":true}]}`))
	// Wrong types and repeated keys.
	f.Add([]byte(`{"name":1,"name":"a","nodes":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Decode(data)
		if err != nil {
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "%T: %v", err, err)
			return
		}
		require.NoError(t, d.Validate())
		b, err := json.Marshal(d)
		require.NoError(t, err)
		again, err := Decode(b)
		require.NoError(t, err, "%s", b)
		require.Equal(t, d, again)
	})
}
