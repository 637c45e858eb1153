package store

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/znet/znet/ipam"
	"github.com/znet/znet/spec"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

func TestFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	fi, err := os.Stat(filepath.Join(dir, "state.db"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	_, err := Open(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "another znetd")
}

func TestNetworkAndWorkloadsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	alloc, err := ipam.NewAllocator(netip.MustParsePrefix("10.20.1.0/24"))
	require.NoError(t, err)
	a, err := alloc.Allocate("workload/web")
	require.NoError(t, err)
	sp := &spec.Spec{Name: "shop", Generation: 2, IPRange: netip.MustParsePrefix("10.20.0.0/16"),
		Nodes: []spec.Node{{ID: "n1", Subnet: netip.MustParsePrefix("10.20.1.0/24")}}}
	sp.SetDefaults()
	require.NoError(t, s.Update(func(tx *Tx) error {
		require.NoError(t, tx.SetNodeID("n1"))
		require.NoError(t, tx.PutNetwork(&Network{Name: "shop", PrivateKey: "k", PublicKey: "p", ListenPort: 51820, Spec: sp, Addrs: alloc}))
		require.NoError(t, tx.PutNetwork(&Network{Name: "shopping", ListenPort: 51821}))
		require.NoError(t, tx.PutWorkload(&Workload{Network: "shop", Name: "web", IPv4: a}))
		require.NoError(t, tx.PutWorkload(&Workload{Network: "shop", Name: "db"}))
		// A network whose name extends another's must not see its workloads.
		return tx.PutWorkload(&Workload{Network: "shopping", Name: "x"})
	}))
	require.NoError(t, s.Close())

	s = open(t, dir)
	require.NoError(t, s.View(func(tx *Tx) error {
		assert.Equal(t, "n1", tx.NodeID())
		n, err := tx.Network("shop")
		require.NoError(t, err)
		assert.True(t, sp.Equal(n.Spec))
		owner, ok := n.Addrs.Owner(a)
		assert.True(t, ok)
		assert.Equal(t, "workload/web", owner)
		wls, err := tx.Workloads("shop")
		require.NoError(t, err)
		require.Len(t, wls, 2)
		assert.Equal(t, "db", wls[0].Name)
		assert.Equal(t, "web", wls[1].Name)
		all, err := tx.Networks()
		require.NoError(t, err)
		assert.Len(t, all, 2)
		return nil
	}))
}

func TestFailedUpdateChangesNothing(t *testing.T) {
	s := open(t, t.TempDir())
	boom := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		require.NoError(t, tx.PutNetwork(&Network{Name: "shop"}))
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.NoError(t, s.View(func(tx *Tx) error {
		_, err := tx.Network("shop")
		assert.ErrorIs(t, err, ErrNotFound)
		return nil
	}))
}

func TestDeleteNetworkTakesItsWorkloads(t *testing.T) {
	s := open(t, t.TempDir())
	require.NoError(t, s.Update(func(tx *Tx) error {
		require.NoError(t, tx.PutNetwork(&Network{Name: "a"}))
		require.NoError(t, tx.PutNetwork(&Network{Name: "b"}))
		require.NoError(t, tx.PutWorkload(&Workload{Network: "a", Name: "w"}))
		require.NoError(t, tx.PutWorkload(&Workload{Network: "b", Name: "w"}))
		return nil
	}))
	for range 2 { // twice: deleting what is gone is fine
		require.NoError(t, s.Update(func(tx *Tx) error { return tx.DeleteNetwork("a") }))
	}
	require.NoError(t, s.View(func(tx *Tx) error {
		_, err := tx.Workload("a", "w")
		assert.ErrorIs(t, err, ErrNotFound)
		_, err = tx.Workload("b", "w")
		assert.NoError(t, err)
		return nil
	}))
}

func TestDump(t *testing.T) {
	s := open(t, t.TempDir())
	empty, err := s.Dump()
	require.NoError(t, err)
	assert.Equal(t, "bucket \"access\"\nbucket \"meta\"\nbucket \"networks\"\nbucket \"ports\"\nbucket \"workloads\"\n", string(empty))

	require.NoError(t, s.Update(func(tx *Tx) error {
		require.NoError(t, tx.SetNodeID("n1"))
		require.NoError(t, tx.PutWorkload(&Workload{Network: "shop", Name: "web"}))
		return tx.PutWorkload(&Workload{Network: "shop", Name: "db"})
	}))
	first, err := s.Dump()
	require.NoError(t, err)
	again, err := s.Dump()
	require.NoError(t, err)
	assert.Equal(t, first, again, "the same state dumps the same")
	assert.Contains(t, string(first), "\"meta\" \"node_id\" = \"n1\"\n")
	assert.Less(t, strings.Index(string(first), `"shop/db"`), strings.Index(string(first), `"shop/web"`), "keys in order")

	// Writing the same value back changes nothing; any other change shows.
	require.NoError(t, s.Update(func(tx *Tx) error { return tx.SetNodeID("n1") }))
	same, err := s.Dump()
	require.NoError(t, err)
	assert.Equal(t, first, same)
	require.NoError(t, s.Update(func(tx *Tx) error { return tx.DeleteWorkload("shop", "db") }))
	changed, err := s.Dump()
	require.NoError(t, err)
	assert.NotEqual(t, first, changed)
}

// TestListenPortsFollowNetworks checks the ports index through put,
// re-put with a new port, delete and a reopen of a file whose index was
// lost (a file written before the index existed).
func TestListenPortsFollowNetworks(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	ports := func(s *Store) map[string]int {
		var out map[string]int
		require.NoError(t, s.View(func(tx *Tx) error { out, err = tx.ListenPorts(); return err }))
		return out
	}
	require.NoError(t, s.Update(func(tx *Tx) error {
		require.NoError(t, tx.PutNetwork(&Network{Name: "shop", ListenPort: 51820}))
		require.NoError(t, tx.PutNetwork(&Network{Name: "blog", ListenPort: 51821}))
		return tx.PutNetwork(&Network{Name: "wiki", ListenPort: 51822})
	}))
	require.NoError(t, s.Update(func(tx *Tx) error {
		require.NoError(t, tx.PutNetwork(&Network{Name: "shop", ListenPort: 51830}))
		return tx.DeleteNetwork("wiki")
	}))
	assert.Equal(t, map[string]int{"shop": 51830, "blog": 51821}, ports(s))
	// Lose the index, as a file from before it would lack it.
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketPorts) }))
	require.NoError(t, s.Close())
	s = open(t, dir)
	assert.Equal(t, map[string]int{"shop": 51830, "blog": 51821}, ports(s))
}
