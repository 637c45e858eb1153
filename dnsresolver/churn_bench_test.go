package dnsresolver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
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

// BenchmarkPushChurn pushes, through the control socket, a config of
// 1,000 members plus one, then without it, to a resolver listening on
// loopback addresses (the members' are unreachable, as in the daemon's
// churn benchmark): the resolver's side of a member added and removed.
func BenchmarkPushChurn(b *testing.B) {
	cfg := Config{Network: "churn", NodeID: "self", Gateway4: netip.MustParseAddr("127.20.0.1"),
		IPRange: netip.MustParsePrefix("127.20.0.0/16")}
	for i := range 1001 {
		a := netip.AddrFrom4([4]byte{127, 20, byte(1 + i/250), byte(1 + i%250)})
		cfg.Members = append(cfg.Members, Member{ID: fmt.Sprintf("m%04d", i), Gateway4: a})
	}
	plus, base := cfg, cfg
	base.Members = cfg.Members[:1000]
	port := 20000 + rand.IntN(20000)
	r, err := NewWithOptions(base, nil, Options{Port: port})
	if err != nil {
		b.Skip(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	sock := filepath.Join(b.TempDir(), "dns.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ServeControl(l, r))
	ctx := context.Background()
	var pushes Pushes
	for b.Loop() {
		if err := pushes.Push(ctx, sock, plus); err != nil {
			b.Fatal(err)
		}
		if err := pushes.Push(ctx, sock, base); err != nil {
			b.Fatal(err)
		}
	}
}
