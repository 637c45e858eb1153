package apitest

import (
	"bytes"
	"encoding/base64"
	"fmt"
)

// Key returns a distinct valid WireGuard public key for each n.
func Key(n byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{n}, 32))
}

// SpecDoc returns the DESIGN.md example spec for a network named name and
// generation gen, with node NodeID as its first member, as the JSON bytes an
// operator would write.
func SpecDoc(name string, gen uint64) []byte {
	return fmt.Appendf(nil, `{
  "name": %q,
  "generation": %d,
  "ip_range": "10.20.0.0/16",
  "mtu": 1420,
  "nodes": [
    {"id": %q, "subnet": "10.20.1.0/24", "public_key": %q, "endpoint": "198.18.0.1:40001"},
    {"id": "node2", "subnet": "10.20.2.0/24", "public_key": %q, "endpoint": "198.18.0.2:40007"},
    {"id": "node3", "subnet": "10.20.3.0/24", "public_key": %q}
  ]
}
`, name, gen, NodeID, Key(1), Key(2), Key(3))
}
