package spec_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/znet/znet/ipam"
)

// key returns a distinct valid public key for each n.
func key(n byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{n}, 32))
}

// goodDoc returns the DESIGN.md example spec as a generic JSON value that a
// test may change before marshalling.
func goodDoc() map[string]any {
	return map[string]any{
		"name":       "shop",
		"generation": 3,
		"ip_range":   "10.20.0.0/16",
		"ipv6_range": "fd3c:9a1e:77b2::/48",
		"mtu":        1420,
		"nodes": []any{
			map[string]any{"id": "node1", "subnet": "10.20.1.0/24", "public_key": key(1), "endpoint": "198.18.0.1:40001"},
			map[string]any{"id": "node2", "subnet": "10.20.2.0/24", "public_key": key(2), "endpoint": "198.18.0.2:40007"},
			map[string]any{"id": "node3", "subnet": "10.20.3.0/24", "public_key": key(3)},
		},
	}
}

// node returns the i-th member of a goodDoc-shaped document.
func node(doc map[string]any, i int) map[string]any {
	return doc["nodes"].([]any)[i].(map[string]any)
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// subnetIndex returns the 16-bit subnet id of subnet's IPv6 /64 twin inside
// the network's /48 (ipam.SubnetID): for a subnet on a boundary of the
// range's default subnet length, its position counted in those (a /24 of a
// /16 keeps its third octet); for any other, the number of such blocks
// plus its position counted in /30s. Subnets that do not overlap never
// share one. It returns -1 when ipam.SubnetID fails (a prefix that is not
// IPv4, subnet not inside ipRange, a range shorter than /8, or an id that
// does not fit in 16 bits).
func subnetIndex(ipRange, subnet netip.Prefix) int {
	id, err := ipam.SubnetID(ipRange.Masked(), subnet.Masked())
	if err != nil {
		return -1
	}
	return int(id)
}
