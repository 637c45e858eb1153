package peers

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/znet/znet/spec"
)

// churnSpec is a network of a public node, one public peer and n hidden
// key-only members, as the control-plane benchmark builds it.
func churnSpec(n int) *spec.Spec {
	s := &spec.Spec{Name: "churn", Generation: 1, IPRange: netip.MustParsePrefix("10.64.0.0/12")}
	s.SetDefaults()
	for i := range n + 2 {
		var k [32]byte
		binary.BigEndian.PutUint32(k[:], uint32(i+1))
		node := spec.Node{ID: fmt.Sprintf("n%d", i), PublicKey: base64.StdEncoding.EncodeToString(k[:]),
			Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(64 + (i+1)/256), byte((i + 1) % 256), 0}), 24)}
		if i < 2 {
			node.Endpoint = fmt.Sprintf("198.18.0.%d:51820", i+1)
		}
		s.Nodes = append(s.Nodes, node)
	}
	return s
}

func BenchmarkDesired(b *testing.B) {
	s := churnSpec(1000)
	ctx := context.Background()
	for b.Loop() {
		if _, err := Desired(ctx, s, "n0", nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRoutes(b *testing.B) {
	d, err := Desired(context.Background(), churnSpec(1000), "n0", nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		Routes(d)
	}
}
