package ipam

import (
	"net/netip"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newAlloc(t testing.TB, subnet string) *Allocator {
	t.Helper()
	a, err := NewAllocator(pfx(subnet))
	require.NoError(t, err)
	return a
}

// allocateAll allocates until ErrFull and returns the addresses in order.
func allocateAll(t testing.TB, a *Allocator) []string {
	t.Helper()
	var got []string
	for {
		ip, err := a.Allocate("w")
		if err != nil {
			require.ErrorIs(t, err, ErrFull)
			return got
		}
		got = append(got, ip.String())
	}
}

func TestNewAllocatorErrors(t *testing.T) {
	tests := []struct {
		name   string
		subnet netip.Prefix
	}{
		{"zero", netip.Prefix{}},
		{"IPv6", pfx("fd00::/64")},
		{"host bits", pfx("10.0.0.1/24")},
		{"/31 has no host", pfx("10.0.0.0/31")},
		{"/32 has no host", pfx("10.0.0.0/32")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewAllocator(tt.subnet)
			assert.Error(t, err)
		})
	}
}

func TestAllocateOrder(t *testing.T) {
	tests := []struct {
		name    string
		subnet  string
		reserve []string
		want    []string
	}{
		{"/29 skips network, gateway and broadcast", "10.0.0.0/29", nil,
			[]string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}},
		{"/30 has a single host", "10.0.0.4/30", nil, []string{"10.0.0.6"}},
		{"/28 skips reserved addresses", "192.168.7.16/28", []string{"192.168.7.20", "192.168.7.23", "192.168.7.30"},
			[]string{"192.168.7.18", "192.168.7.19", "192.168.7.21", "192.168.7.22", "192.168.7.24", "192.168.7.25",
				"192.168.7.26", "192.168.7.27", "192.168.7.28", "192.168.7.29"}},
		{"reserving the first host", "10.0.0.0/29", []string{"10.0.0.2"},
			[]string{"10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}},
		{"every host reserved", "10.0.0.0/30", []string{"10.0.0.2"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAlloc(t, tt.subnet)
			for _, r := range tt.reserve {
				require.NoError(t, a.Reserve(addr(r), "reserved"))
			}
			assert.Equal(t, tt.want, allocateAll(t, a))
			assert.Zero(t, a.Free())
		})
	}

	t.Run("/24 crosses the byte boundary in order", func(t *testing.T) {
		a := newAlloc(t, "10.20.1.0/24")
		got := allocateAll(t, a)
		require.Len(t, got, 253)
		assert.Equal(t, "10.20.1.2", got[0])
		assert.Equal(t, "10.20.1.10", got[8])
		assert.Equal(t, "10.20.1.254", got[252])
	})
}

func TestReuseOrder(t *testing.T) {
	t.Run("released after exhaustion come back oldest first", func(t *testing.T) {
		a := newAlloc(t, "10.0.0.0/29")
		require.Len(t, allocateAll(t, a), 5)
		require.True(t, a.Release(addr("10.0.0.4"))) // b
		require.True(t, a.Release(addr("10.0.0.3"))) // a
		require.True(t, a.Release(addr("10.0.0.6")))
		assert.Equal(t, []string{"10.0.0.4", "10.0.0.3", "10.0.0.6"}, allocateAll(t, a))
	})
	t.Run("never-used addresses go before released ones", func(t *testing.T) {
		a := newAlloc(t, "10.0.0.0/29")
		for _, want := range []string{"10.0.0.2", "10.0.0.3"} {
			ip, err := a.Allocate("w")
			require.NoError(t, err)
			require.Equal(t, want, ip.String())
		}
		require.True(t, a.Release(addr("10.0.0.3")))
		require.True(t, a.Release(addr("10.0.0.2")))
		assert.Equal(t, []string{"10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.3", "10.0.0.2"}, allocateAll(t, a))
	})
	t.Run("a reused address goes to the back again", func(t *testing.T) {
		a := newAlloc(t, "10.0.0.0/29")
		allocateAll(t, a)
		require.True(t, a.Release(addr("10.0.0.2")))
		require.True(t, a.Release(addr("10.0.0.3")))
		ip, err := a.Allocate("w")
		require.NoError(t, err)
		require.Equal(t, "10.0.0.2", ip.String())
		require.True(t, a.Release(addr("10.0.0.2")))
		assert.Equal(t, []string{"10.0.0.3", "10.0.0.2"}, allocateAll(t, a))
	})
	t.Run("reserving a released address takes it out of the queue", func(t *testing.T) {
		a := newAlloc(t, "10.0.0.0/29")
		allocateAll(t, a)
		require.True(t, a.Release(addr("10.0.0.3")))
		require.True(t, a.Release(addr("10.0.0.4")))
		require.True(t, a.Release(addr("10.0.0.5")))
		require.NoError(t, a.Reserve(addr("10.0.0.4"), "pinned"))
		assert.Equal(t, []string{"10.0.0.3", "10.0.0.5"}, allocateAll(t, a))
		owner, ok := a.Owner(addr("10.0.0.4"))
		assert.True(t, ok)
		assert.Equal(t, "pinned", owner)
	})
	t.Run("a reserved address above the cursor is skipped after release", func(t *testing.T) {
		a := newAlloc(t, "10.0.0.0/29")
		require.NoError(t, a.Reserve(addr("10.0.0.4"), "pinned"))
		require.True(t, a.Release(addr("10.0.0.4")))
		assert.Equal(t, []string{"10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6", "10.0.0.4"}, allocateAll(t, a))
	})
	t.Run("many reserve-release rounds keep the queue small", func(t *testing.T) {
		a := newAlloc(t, "10.0.0.0/29")
		allocateAll(t, a)
		require.True(t, a.Release(addr("10.0.0.6")))
		for range 1000 {
			require.True(t, a.Release(addr("10.0.0.2")))
			require.NoError(t, a.Reserve(addr("10.0.0.2"), "again"))
		}
		assert.LessOrEqual(t, len(a.queue), 2*len(a.released)+16)
		assert.Equal(t, []string{"10.0.0.6"}, allocateAll(t, a))
	})
}

func TestFullSlash30(t *testing.T) {
	a := newAlloc(t, "10.9.8.0/30")
	assert.Equal(t, 1, a.Free())
	ip, err := a.Allocate("first")
	require.NoError(t, err)
	assert.Equal(t, addr("10.9.8.2"), ip)
	_, err = a.Allocate("second")
	require.ErrorIs(t, err, ErrFull)
	assert.Contains(t, err.Error(), "10.9.8.0/30")
	assert.Zero(t, a.Free())

	require.True(t, a.Release(ip))
	ip, err = a.Allocate("third")
	require.NoError(t, err)
	assert.Equal(t, addr("10.9.8.2"), ip)
}

func TestReserveErrors(t *testing.T) {
	a := newAlloc(t, "10.20.1.0/24")
	require.NoError(t, a.Reserve(addr("10.20.1.50"), "web"))

	tests := []struct {
		name string
		addr netip.Addr
		want error
	}{
		{"network address", addr("10.20.1.0"), ErrReserved},
		{"gateway", addr("10.20.1.1"), ErrReserved},
		{"broadcast", addr("10.20.1.255"), ErrReserved},
		{"mapped gateway", addr("::ffff:10.20.1.1"), ErrReserved},
		{"other subnet", addr("10.20.2.5"), ErrOutside},
		{"just below", addr("10.20.0.255"), ErrOutside},
		{"IPv6", addr("fd3c:9a1e:77b2:1::5"), ErrOutside},
		{"zero address", netip.Addr{}, ErrOutside},
		{"taken", addr("10.20.1.50"), ErrTaken},
		{"taken, mapped", addr("::ffff:10.20.1.50"), ErrTaken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := a.Reserve(tt.addr, "other")
			require.ErrorIs(t, err, tt.want)
			assert.Contains(t, err.Error(), tt.addr.String())
		})
	}
	owner, ok := a.Owner(addr("10.20.1.50"))
	assert.True(t, ok)
	assert.Equal(t, "web", owner, "a failed Reserve leaves the owner alone")
	assert.Len(t, a.Allocated(), 1)
}

func TestReleaseOwnerAllocated(t *testing.T) {
	a := newAlloc(t, "10.20.1.0/24")
	web, err := a.Allocate("workload/web")
	require.NoError(t, err)
	require.NoError(t, a.Reserve(addr("::ffff:10.20.1.9"), "access/laptop"))
	assert.Equal(t, 251, a.Free())

	got := a.Allocated()
	assert.Equal(t, map[netip.Addr]string{web: "workload/web", addr("10.20.1.9"): "access/laptop"}, got)
	got[addr("10.20.1.100")] = "intruder"
	delete(got, web)
	assert.Len(t, a.Allocated(), 2, "Allocated returns a copy")

	owner, ok := a.Owner(addr("10.20.1.9"))
	assert.True(t, ok)
	assert.Equal(t, "access/laptop", owner)
	_, ok = a.Owner(addr("10.20.1.10"))
	assert.False(t, ok)

	for _, tt := range []struct {
		name string
		addr netip.Addr
	}{
		{"never allocated", addr("10.20.1.10")},
		{"outside", addr("10.20.2.2")},
		{"gateway", addr("10.20.1.1")},
		{"zero", netip.Addr{}},
	} {
		t.Run("release "+tt.name, func(t *testing.T) {
			assert.False(t, a.Release(tt.addr))
		})
	}

	assert.True(t, a.Release(addr("::ffff:10.20.1.9")))
	assert.False(t, a.Release(addr("10.20.1.9")), "released twice")
	_, ok = a.Owner(addr("10.20.1.9"))
	assert.False(t, ok)
	assert.Equal(t, 252, a.Free())
	assert.Equal(t, pfx("10.20.1.0/24"), a.Subnet())
}

func TestZeroAllocator(t *testing.T) {
	var a Allocator
	_, err := a.Allocate("w")
	require.ErrorIs(t, err, ErrFull)
	require.ErrorIs(t, a.Reserve(addr("10.0.0.2"), "w"), ErrOutside)
	assert.False(t, a.Release(addr("10.0.0.2")))
	assert.Zero(t, a.Free())
	assert.Empty(t, a.Allocated())
	_, err = a.MarshalJSON()
	assert.Error(t, err)
}

// TestLargeSubnet fills a /16, empties it and fills it again: state stays
// proportional to the addresses in use and the reuse order holds at scale.
func TestLargeSubnet(t *testing.T) {
	t.Run("creating a /8 allocates nothing per address", func(t *testing.T) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		a := newAlloc(t, "10.0.0.0/8")
		runtime.ReadMemStats(&after)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10))
		assert.Equal(t, 1<<24-3, a.Free())
	})
	t.Run("/16 round trip", func(t *testing.T) {
		a := newAlloc(t, "10.7.0.0/16")
		first := allocateAll(t, a)
		require.Len(t, first, 1<<16-3)
		assert.Equal(t, "10.7.255.254", first[len(first)-1])
		// Release from the top down, so reuse must come back descending.
		for i := len(first) - 1; i >= 0; i-- {
			require.True(t, a.Release(addr(first[i])))
		}
		again := allocateAll(t, a)
		require.Len(t, again, len(first))
		for i := range again {
			if again[i] != first[len(first)-1-i] {
				require.Equal(t, first[len(first)-1-i], again[i], "reuse #%d", i)
			}
		}
	})
}
