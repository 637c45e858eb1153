package spec

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// bigSpecOf returns a valid spec of n public members.
func bigSpecOf(n int) *Spec {
	s := &Spec{Name: "big", Generation: 1, IPRange: netip.MustParsePrefix("10.0.0.0/8")}
	s.SetDefaults()
	for i := range n {
		var k [32]byte
		binary.BigEndian.PutUint32(k[:], uint32(i))
		s.Nodes = append(s.Nodes, Node{
			ID:        fmt.Sprintf("n%d", i),
			Subnet:    netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i)}), 24),
			PublicKey: base64.StdEncoding.EncodeToString(k[:]),
			Endpoint:  fmt.Sprintf("198.18.%d.%d:51820", i>>8, i&0xff),
		})
	}
	return s
}

// BenchmarkDecode decodes and validates a spec of a thousand members, the
// first step of every apply on such a network.
func BenchmarkDecode(b *testing.B) {
	doc, err := json.Marshal(bigSpecOf(1000))
	require.NoError(b, err)
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			_, err := Decode(doc, "")
			require.NoError(b, err)
		}
	})
	b.Run("validate", func(b *testing.B) {
		s := bigSpecOf(1000)
		for b.Loop() {
			require.NoError(b, s.Validate(""))
		}
	})
}

// FuzzCheckKey checks that checkKey answers as checkKeySlowly does.
func FuzzCheckKey(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")     // canonical
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=")     // padding bits set
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")     // no padding
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n=")    // a newline, which the decoder skips
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") // 34 bytes
	f.Fuzz(func(t *testing.T, key string) {
		want := checkKeySlowly(key)
		got := checkKey(key)
		if want == nil {
			require.NoError(t, got)
			return
		}
		require.EqualError(t, got, want.Error())
	})
}
