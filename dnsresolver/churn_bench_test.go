package dnsresolver

import (
	"fmt"
	"net/netip"
	"testing"
)

// bigConfig is n1's config (testConfig) with n members, each with an IPv4
// gateway and subnet.
func bigConfig(n int) Config {
	cfg := testConfig()
	cfg.Members = nil
	for i := range n {
		j := 1024 + i // past n1 (10.20.1.0/24) and its ranges
		sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 20, byte(j / 256), byte(j % 256)}), 32)
		cfg.Members = append(cfg.Members, Member{ID: fmt.Sprintf("m%04d", i), Gateway4: sub.Addr(), Subnet4: sub})
	}
	return cfg
}

// BenchmarkUpdateParts times what an Update of a 1,000-member config
// costs in the resolver, step by step.
func BenchmarkUpdateParts(b *testing.B) {
	cfg := bigConfig(1000)
	ncfg, err := cfg.normalized()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("normalize", func(b *testing.B) {
		for b.Loop() {
			_, _ = cfg.normalized()
		}
	})
	b.Run("view", func(b *testing.B) {
		for b.Loop() {
			newView(ncfg, 1, 1, nil)
		}
	})
}
