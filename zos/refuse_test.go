package zos_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/spec"
	"github.com/znet/znet/zos"
)

// doc returns a fixture as a generic JSON value that a test may change.
func doc(t *testing.T, name string) map[string]any {
	var d map[string]any
	require.NoError(t, json.Unmarshal(fixture(t, name), &d))
	return d
}

func data(d map[string]any) map[string]any { return d["data"].(map[string]any) }

func peer(d map[string]any, i int) map[string]any {
	return data(d)["peers"].([]any)[i].(map[string]any)
}

// TestRefused checks every refusal: the field named, the reason, and that
// the node's private key is in no message.
func TestRefused(t *testing.T) {
	good := string(fixture(t, "access"))
	tests := []struct {
		name   string
		raw    string                   // the document, when not the changed fixture
		change func(doc map[string]any) // applied to access.json otherwise
		twin   uint32                   // 42 when zero
		field  string
		reason string
	}{
		// The document.
		{name: "empty", raw: "", reason: "malformed"},
		{name: "truncated", raw: good[:len(good)/2], reason: "malformed or truncated"},
		{name: "trailing data", raw: good + "{}", reason: "after the object"},
		{name: "an array", raw: "[]", reason: "must be an object"},
		{name: "too large", raw: good + strings.Repeat(" ", spec.MaxSize), reason: "larger than the limit"},
		{name: "unknown field", change: func(d map[string]any) { d["colour"] = "red" }, field: "colour", reason: "unknown field"},
		{name: "repeated field", raw: `{"name":"a","name":"b"}`, field: "name", reason: "more than once"},
		{name: "unknown data field", change: func(d map[string]any) { data(d)["vlan"] = 7 }, field: "data.vlan", reason: "unknown field"},
		{name: "unknown peer field", change: func(d map[string]any) { peer(d, 0)["port"] = 7 }, field: "data.peers[0].port", reason: "unknown field"},
		{name: "peer not an object", change: func(d map[string]any) { data(d)["peers"] = []any{"x"} }, field: "data.peers[0]", reason: "must be an object"},

		// The envelope.
		{name: "version negative", change: func(d map[string]any) { d["version"] = -1 }, field: "version", reason: "whole number"},
		{name: "version a string", change: func(d map[string]any) { d["version"] = "1" }, field: "version", reason: "must be a number"},
		{name: "version a fraction", change: func(d map[string]any) { d["version"] = 1.5 }, field: "version", reason: "whole number"},
		{name: "another type", change: func(d map[string]any) { d["type"] = "zmachine" }, field: "type", reason: `must be "network"`},
		{name: "no type", change: func(d map[string]any) { delete(d, "type") }, field: "type", reason: `must be "network"`},
		{name: "no name", change: func(d map[string]any) { d["name"] = "" }, field: "name", reason: "required"},
		{name: "name too long", change: func(d map[string]any) { d["name"] = strings.Repeat("n", 256) }, field: "name", reason: "too long"},
		{name: "twin zero", change: func(map[string]any) {}, twin: 0xffffffff, field: "twin", reason: "twin id"},
		{name: "mycelium", change: func(d map[string]any) { data(d)["mycelium"] = map[string]any{"hex_key": "00"} }, field: "data.mycelium", reason: "not supported"},

		// The node's own part.
		{name: "no ip_range", change: func(d map[string]any) { delete(data(d), "ip_range") }, field: "data.ip_range", reason: "required"},
		{name: "ip_range not a prefix", change: func(d map[string]any) { data(d)["ip_range"] = "10.20.0.0" }, field: "data.ip_range", reason: "not a CIDR prefix"},
		{name: "ip_range IPv6", change: func(d map[string]any) { data(d)["ip_range"] = "fd00::/48" }, field: "data.ip_range", reason: "not an IPv4 prefix"},
		{name: "ip_range too wide", change: func(d map[string]any) { data(d)["ip_range"] = "10.0.0.0/7" }, field: "data.ip_range", reason: "out of range"},
		{name: "ip_range too narrow", change: func(d map[string]any) { data(d)["ip_range"] = "10.20.0.0/29" }, field: "data.ip_range", reason: "out of range"},
		{name: "no subnet", change: func(d map[string]any) { delete(data(d), "subnet") }, field: "data.subnet", reason: "required"},
		{name: "subnet outside the range", change: func(d map[string]any) { data(d)["subnet"] = "10.21.2.0/24" }, field: "data.subnet", reason: "not inside ip_range"},
		{name: "subnet wider than the range", change: func(d map[string]any) { data(d)["subnet"] = "10.20.0.0/15" }, field: "data.subnet", reason: "not inside ip_range"},
		{name: "subnet too narrow", change: func(d map[string]any) { data(d)["subnet"] = "10.20.2.0/31" }, field: "data.subnet", reason: "too long"},
		{name: "no private key", change: func(d map[string]any) { delete(data(d), "wireguard_private_key") }, field: "data.wireguard_private_key", reason: "not a base64"},
		{name: "private key malformed", change: func(d map[string]any) {
			data(d)["wireguard_private_key"] = "aFlvkQJWoVXtvlDXELi5jL63XYZ8Wi367cVCfEnf"
		}, field: "data.wireguard_private_key", reason: "not a base64"},
		{name: "private key a number", change: func(d map[string]any) { data(d)["wireguard_private_key"] = 7 }, field: "data.wireguard_private_key", reason: "must be a string"},
		{name: "no port", change: func(d map[string]any) { delete(data(d), "wireguard_listen_port") }, field: "data.wireguard_listen_port", reason: "required"},
		{name: "port too big", change: func(d map[string]any) { data(d)["wireguard_listen_port"] = 65536 }, field: "data.wireguard_listen_port", reason: "between 0 and 65535"},

		// Peers.
		{name: "peer key malformed", change: func(d map[string]any) { peer(d, 1)["wireguard_public_key"] = "abc" }, field: "data.peers[1].wireguard_public_key", reason: "not a base64"},
		{name: "peer key not canonical", change: func(d map[string]any) {
			peer(d, 1)["wireguard_public_key"] = "rqR9Fat8ZgiUqBP4WHRgXsaxPD8FFtuCNfs4ployOTt="
		}, field: "data.peers[1].wireguard_public_key", reason: "not canonical"},
		{name: "peer key is the node's", change: func(d map[string]any) {
			peer(d, 1)["wireguard_public_key"] = "zWm0qriBARjl8Z9/Ln+4dWNlYNqWZFdEddaNZ4KdJkk="
		}, field: "data.peers[1].wireguard_public_key", reason: "own key"},
		{name: "peer key twice", change: func(d map[string]any) {
			peer(d, 2)["wireguard_public_key"] = peer(d, 0)["wireguard_public_key"]
		}, field: "data.peers[2].wireguard_public_key", reason: "same as data.peers[0]"},
		{name: "no allowed IPs", change: func(d map[string]any) { peer(d, 0)["allowed_ips"] = []any{} }, field: "data.peers[0].allowed_ips", reason: "required"},
		{name: "allowed IP not a prefix", change: func(d map[string]any) { peer(d, 0)["allowed_ips"] = []any{"10.20.3.0"} }, field: "data.peers[0].allowed_ips[0]", reason: "not a CIDR prefix"},
		{name: "allowed IP outside", change: func(d map[string]any) {
			peer(d, 0)["allowed_ips"] = []any{"10.20.3.0/24", "192.168.1.0/24"}
		}, field: "data.peers[0].allowed_ips[1]", reason: "outside ip_range 10.20.0.0/16 and 100.64.0.0/16"},
		{name: "allowed IP wider than the range", change: func(d map[string]any) { peer(d, 0)["allowed_ips"] = []any{"0.0.0.0/0"} }, field: "data.peers[0].allowed_ips[0]", reason: "outside"},
		{name: "allowed IP IPv6", change: func(d map[string]any) { peer(d, 0)["allowed_ips"] = []any{"fd00::/64"} }, field: "data.peers[0].allowed_ips[0]", reason: "not an IPv4 prefix"},
		{name: "allowed IP given to two peers", change: func(d map[string]any) {
			peer(d, 2)["allowed_ips"] = []any{"10.20.5.0/24", "100.64.20.3/32"}
		}, field: "data.peers[2].allowed_ips[1]", reason: "also in data.peers[0].allowed_ips[1]"},
		{name: "peer subnet missing", change: func(d map[string]any) { delete(peer(d, 1), "subnet") }, field: "data.peers[1].subnet", reason: "required"},
		{name: "peer subnet outside the range", change: func(d map[string]any) { peer(d, 1)["subnet"] = "10.99.4.0/24" }, field: "data.peers[1].subnet", reason: "not inside ip_range"},
		{name: "peer subnet overlaps the node's", change: func(d map[string]any) { peer(d, 1)["subnet"] = "10.20.2.128/25" }, field: "data.peers[1].subnet", reason: "overlaps this node's data.subnet 10.20.2.0/24"},
		{name: "peer subnet is the node's without the access node's allowed IPs", change: func(d map[string]any) {
			peer(d, 1)["subnet"] = "10.20.2.0/24"
		}, field: "data.peers[1].subnet", reason: "overlaps this node's"},
		{name: "peer subnets overlap", change: func(d map[string]any) { peer(d, 2)["subnet"] = "10.20.0.0/22" }, field: "data.peers[2].subnet", reason: "overlaps"},
		{name: "peer endpoint malformed", change: func(d map[string]any) { peer(d, 0)["endpoint"] = "185.69.166.121" }, field: "data.peers[0].endpoint", reason: "185.69.166.121"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			if tt.change != nil {
				d := doc(t, "access")
				tt.change(d)
				b, err := json.Marshal(d)
				require.NoError(t, err)
				raw = string(b)
			}
			twin := uint32(42)
			if tt.twin == 0xffffffff {
				twin = 0
			}
			w, err := zos.Decode([]byte(raw))
			if err == nil {
				_, err = zos.Translate(twin, w, "node-a")
			}
			var fe *spec.FieldError
			require.ErrorAs(t, err, &fe)
			require.ErrorIs(t, err, spec.ErrInvalid)
			assert.Equal(t, tt.field, fe.Field)
			assert.Contains(t, fe.Reason, tt.reason)
			assert.NotContains(t, err.Error(), "aFlvkQJWoVXtvlDXELi5jL63", "the private key is in no message")
		})
	}
}

// TestPrivateKeyHidden checks that a decoded workload prints and marshals
// without its key.
func TestPrivateKeyHidden(t *testing.T) {
	w, err := zos.Decode(fixture(t, "access"))
	require.NoError(t, err)
	b, err := json.Marshal(w)
	require.NoError(t, err)
	for _, s := range []string{string(b), fmtAll(w)} {
		assert.NotContains(t, s, "aFlvkQJWoVXtvlDXELi5jL63")
		assert.Contains(t, s, "(hidden)")
	}
}

func TestNetworkName(t *testing.T) {
	// echo -n "42:mynet" | sha256sum
	assert.Equal(t, "z368907a44eec32e", zos.NetworkName(42, "mynet"))
	assert.NotEqual(t, zos.NetworkName(42, "mynet"), zos.NetworkName(43, "mynet"))
	assert.NotEqual(t, zos.NetworkName(4, "2:mynet"), zos.NetworkName(42, ":mynet"))
	require.NoError(t, spec.ValidName(zos.NetworkName(1, "Web_Net")))
}
