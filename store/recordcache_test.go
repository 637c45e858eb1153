package store

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/ipam"
	"github.com/znet/znet/spec"
)

// bigNetwork is a network whose spec has n members.
func bigNetwork(n int) *Network {
	s := &spec.Spec{Name: "big", Generation: 1, IPRange: netip.MustParsePrefix("10.0.0.0/8")}
	for i := range n {
		var k [32]byte
		k[0], k[1] = byte(i), byte(i>>8)
		s.Nodes = append(s.Nodes, spec.Node{ID: fmt.Sprintf("n%d", i), PublicKey: base64.StdEncoding.EncodeToString(k[:]),
			Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)})
	}
	s.Nodes[0].AllowedIPs = []netip.Prefix{netip.MustParsePrefix("10.200.0.0/16")}
	return &Network{Name: "big", PrivateKey: "priv", PublicKey: "pub", ListenPort: 40000, Spec: s}
}

func readNetwork(t testing.TB, s *Store, name string) *Network {
	var n *Network
	require.NoError(t, s.View(func(tx *Tx) (err error) { n, err = tx.Network(name); return err }))
	return n
}

// TestNetworkReadsDecodeOnce: reading a network again whose spec did not
// change costs a copy, not a decode; what it gives is what was stored,
// and the caller's changes to it stay its own.
func TestNetworkReadsDecodeOnce(t *testing.T) {
	s := open(t, t.TempDir())
	n := bigNetwork(1000)
	require.NoError(t, s.Update(func(tx *Tx) error { return tx.PutNetwork(n) }))
	first := readNetwork(t, s, "big")
	assert.Equal(t, n, first)

	first.Spec.Nodes[0].ID = "changed"
	first.Spec.Nodes[0].AllowedIPs[0] = netip.MustParsePrefix("10.201.0.0/16")
	assert.Equal(t, n, readNetwork(t, s, "big"), "a reader's changes stay its own")

	allocs := testing.AllocsPerRun(5, func() { readNetwork(t, s, "big") })
	assert.Less(t, allocs, 200.0, "a read of an unchanged 1,000-member spec decodes it again")

	n.Spec.Generation = 2
	n.Spec.Nodes = n.Spec.Nodes[1:]
	require.NoError(t, s.Update(func(tx *Tx) error { return tx.PutNetwork(n) }))
	assert.Equal(t, n, readNetwork(t, s, "big"), "a new spec is decoded")

	require.NoError(t, s.Update(func(tx *Tx) error { return tx.DeleteNetwork("big") }))
	assert.Empty(t, s.records.byName, "a deleted network's record is forgotten")
}

// TestCachedRecordMatchesEncodingJSON: a record read from the cache is
// what decoding its bytes gives, with a spec, an allocator and a zos
// origin, and without them; a reader's changes to any of them stay its
// own.
func TestCachedRecordMatchesEncodingJSON(t *testing.T) {
	full := bigNetwork(3)
	full.Zos = &ZosOrigin{Twin: 7, Name: "w", Version: 2}
	addrs, err := ipam.NewAllocator(netip.MustParsePrefix("10.0.1.0/24"))
	require.NoError(t, err)
	full.Addrs = addrs
	_, err = full.Addrs.Allocate("vm1")
	require.NoError(t, err)
	for _, n := range []*Network{full, {Name: "big", ListenPort: 1}} {
		s := open(t, t.TempDir())
		require.NoError(t, s.Update(func(tx *Tx) error { return tx.PutNetwork(n) }))
		var want Network
		require.NoError(t, s.View(func(tx *Tx) error {
			return json.Unmarshal(tx.tx.Bucket(bucketNetworks).Get([]byte("big")), &want)
		}))
		got := readNetwork(t, s, "big")
		assert.Equal(t, &want, got)
		if got.Addrs != nil {
			_, err := got.Addrs.Allocate("vm2")
			require.NoError(t, err)
			got.Zos.Version = 9
			assert.Equal(t, &want, readNetwork(t, s, "big"), "a reader's changes stay its own")
		}
	}
}

// TestUnreadableRecord: a record that does not decode is an error, not a
// cached network.
func TestUnreadableRecord(t *testing.T) {
	var c recordCache
	_, err := c.decode("r", []byte(`{"name":"r","spec":{"nodes":7}}`))
	require.Error(t, err)
	assert.Empty(t, c.byName)
}

// TestStoredSpecIsReadWithoutADecode: the read after a write of a new
// spec (an apply's, then the next apply's read) copies the spec the
// write recorded, and gives exactly what a decode gives.
func TestStoredSpecIsReadWithoutADecode(t *testing.T) {
	s := open(t, t.TempDir())
	n := bigNetwork(1000)
	n.Spec.Nodes[1].AllowedIPs = []netip.Prefix{} // decodes as nil
	n.Spec.Nodes[2].LinkAddress = netip.MustParseAddr("100.64.0.2")
	n.Spec.MTU, n.Spec.Egress = 1400, true
	require.NoError(t, s.Update(func(tx *Tx) error { return tx.PutNetwork(n) }))

	var want *Network
	require.NoError(t, s.View(func(tx *Tx) error {
		return json.Unmarshal(tx.tx.Bucket(bucketNetworks).Get([]byte("big")), &want)
	}))
	assert.Equal(t, want, readNetwork(t, s, "big"), "what the write recorded is what a decode gives")

	n.Spec.Generation = 2
	n.Spec.Nodes = n.Spec.Nodes[1:]
	require.NoError(t, s.Update(func(tx *Tx) error { return tx.PutNetwork(n) }))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := readNetwork(t, s, "big") // the first read: AllocsPerRun would warm up
	runtime.ReadMemStats(&after)
	assert.Less(t, after.Mallocs-before.Mallocs, uint64(1000), "the read after a write decodes the spec again")
	assert.Equal(t, decoded(n.Spec), got.Spec)
}
