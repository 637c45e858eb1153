package store

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/znet/znet/ipam"
	"github.com/znet/znet/spec"
)

// fillNetworks stores n applied one-node networks, as a node hosting n
// deployments holds.
func fillNetworks(b *testing.B, s *Store, n int) {
	b.Helper()
	require.NoError(b, s.Update(func(tx *Tx) error {
		for i := range n {
			alloc, err := ipam.NewAllocator(netip.MustParsePrefix("10.20.1.0/24"))
			if err != nil {
				return err
			}
			sp := &spec.Spec{Name: fmt.Sprintf("b%d", i), Generation: 1, IPRange: netip.MustParsePrefix("10.20.0.0/16"),
				Nodes: []spec.Node{{ID: "n1", Subnet: netip.MustParsePrefix("10.20.1.0/24"), PublicKey: "k"}}}
			sp.SetDefaults()
			if err := tx.PutNetwork(&Network{Name: sp.Name, PrivateKey: "k", PublicKey: "p", ListenPort: 40000 + i, Spec: sp, Addrs: alloc}); err != nil {
				return err
			}
		}
		return nil
	}))
}

// BenchmarkPortsOf1000 compares what a reservation reads to find a free
// port on a node with 1,000 networks: every network decoded in full
// (Networks) against the ports alone (ListenPorts).
func BenchmarkPortsOf1000(b *testing.B) {
	s, err := Open(b.TempDir())
	require.NoError(b, err)
	defer func() { _ = s.Close() }()
	fillNetworks(b, s, 1000)
	b.Run("Networks", func(b *testing.B) {
		for b.Loop() {
			require.NoError(b, s.View(func(tx *Tx) error { _, err := tx.Networks(); return err }))
		}
	})
	b.Run("ListenPorts", func(b *testing.B) {
		for b.Loop() {
			require.NoError(b, s.View(func(tx *Tx) error { _, err := tx.ListenPorts(); return err }))
		}
	})
}
