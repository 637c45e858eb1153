package ipam

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const golden = `{"subnet":"10.20.1.0/24","next":"10.20.1.5","allocated":{"10.20.1.2":"workload/web","10.20.1.4":"access/laptop"},"released":{"10.20.1.3":4},"seq":5}`

func TestMarshalGolden(t *testing.T) {
	a := newAlloc(t, "10.20.1.0/24")
	for _, owner := range []string{"workload/web", "workload/db", "access/laptop"} {
		_, err := a.Allocate(owner)
		require.NoError(t, err)
	}
	// Five releases of .3 (sequence numbers 0..4), reserved again in between.
	for i := range 5 {
		require.True(t, a.Release(addr("10.20.1.3")))
		if i < 4 {
			require.NoError(t, a.Reserve(addr("10.20.1.3"), "again"))
		}
	}
	b, err := a.MarshalJSON()
	require.NoError(t, err)
	assert.Equal(t, golden, string(b))

	var back Allocator
	require.NoError(t, back.UnmarshalJSON([]byte(golden)))
	assert.Equal(t, pfx("10.20.1.0/24"), back.Subnet())
	assert.Equal(t, map[netip.Addr]string{
		addr("10.20.1.2"): "workload/web",
		addr("10.20.1.4"): "access/laptop",
	}, back.Allocated())
	assert.Equal(t, 251, back.Free())
}

func TestMarshalSortsNumerically(t *testing.T) {
	a := newAlloc(t, "10.20.1.0/24")
	for _, s := range []string{"10.20.1.100", "10.20.1.9", "10.20.1.20"} {
		require.NoError(t, a.Reserve(addr(s), `quote" and <tag>`))
	}
	b, err := a.MarshalJSON()
	require.NoError(t, err)
	assert.Equal(t, `{"subnet":"10.20.1.0/24","next":"10.20.1.2","allocated":{`+
		`"10.20.1.9":"quote\" and \u003ctag\u003e","10.20.1.20":"quote\" and \u003ctag\u003e","10.20.1.100":"quote\" and \u003ctag\u003e"},`+
		`"released":{},"seq":0}`, string(b))
}

func TestJSONRoundTrip(t *testing.T) {
	// script drives two allocators the same way; one of them goes through JSON
	// after every prefix of the script.
	script := func(a *Allocator, i int) string {
		switch i % 7 {
		case 0, 1, 3, 5:
			ip, err := a.Allocate(fmt.Sprintf("w%d", i))
			return fmt.Sprint(ip, err)
		case 2:
			return fmt.Sprint(a.Release(netip.AddrFrom4([4]byte{10, 1, 2, byte(2 + i*5%14)})))
		case 4:
			return fmt.Sprint(a.Reserve(netip.AddrFrom4([4]byte{10, 1, 2, byte(i * 3 % 16)}), fmt.Sprintf("r%d", i)))
		default:
			ip := netip.AddrFrom4([4]byte{10, 1, 2, byte(2 + i*11%14)})
			owner, ok := a.Owner(ip)
			return fmt.Sprint(owner, ok, a.Free())
		}
	}
	for cut := 0; cut <= 60; cut += 6 {
		t.Run(fmt.Sprintf("serialised after %d ops", cut), func(t *testing.T) {
			plain := newAlloc(t, "10.1.2.0/28")
			a := newAlloc(t, "10.1.2.0/28")
			for i := range cut {
				require.Equal(t, script(plain, i), script(a, i))
			}
			first, err := json.Marshal(a)
			require.NoError(t, err)
			var back Allocator
			require.NoError(t, json.Unmarshal(first, &back))
			second, err := json.Marshal(&back)
			require.NoError(t, err)
			require.Equal(t, string(first), string(second), "marshal, unmarshal, marshal is byte-identical")

			for i := cut; i < cut+80; i++ {
				require.Equal(t, script(plain, i), script(&back, i), "op %d", i)
			}
			want, err := plain.MarshalJSON()
			require.NoError(t, err)
			got, err := back.MarshalJSON()
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got))
		})
	}

	t.Run("embedded in a struct", func(t *testing.T) {
		type record struct {
			Alloc *Allocator `json:"alloc"`
		}
		a := newAlloc(t, "10.1.2.0/28")
		_, err := a.Allocate("w")
		require.NoError(t, err)
		b, err := json.Marshal(record{Alloc: a})
		require.NoError(t, err)
		var r record
		require.NoError(t, json.Unmarshal(b, &r))
		assert.Equal(t, a.Allocated(), r.Alloc.Allocated())
	})
}

func TestUnmarshalRejects(t *testing.T) {
	// Each case changes one thing in an otherwise valid document.
	doc := func(subnet, next, allocated, released string, seq int) string {
		return fmt.Sprintf(`{"subnet":%q,"next":%q,"allocated":{%s},"released":{%s},"seq":%d}`, subnet, next, allocated, released, seq)
	}
	ok := doc("10.20.1.0/24", "10.20.1.5", `"10.20.1.2":"a","10.20.1.4":"b"`, `"10.20.1.3":4`, 5)

	tests := []struct{ name, in, msg string }{
		{"not JSON", `{"subnet":`, ""},
		{"empty", ``, ""},
		{"array", `[]`, ""},
		{"null owner type", doc("10.20.1.0/24", "10.20.1.5", `"10.20.1.2":7,"10.20.1.4":"b"`, `"10.20.1.3":4`, 5), ""},
		{"negative release", doc("10.20.1.0/24", "10.20.1.5", `"10.20.1.2":"a","10.20.1.4":"b"`, `"10.20.1.3":-1`, 5), ""},
		{"unknown field", `{"subnet":"10.20.1.0/24","next":"10.20.1.2","allocated":{},"released":{},"seq":0,"extra":1}`, "unknown field"},
		{"trailing data", ok + ` {}`, "after the object"},
		{"missing subnet", `{"next":"10.20.1.2"}`, "not an IPv4 prefix"},
		{"IPv6 subnet", doc("fd00::/64", "fd00::2", "", "", 0), "not an IPv4 prefix"},
		{"subnet host bits", doc("10.20.1.7/24", "10.20.1.2", "", "", 0), "host bits"},
		{"subnet /31", doc("10.20.1.0/31", "10.20.1.0", "", "", 0), "longer than"},
		{"bad subnet", doc("10.20.1.0/33", "10.20.1.2", "", "", 0), ""},
		{"missing next", `{"subnet":"10.20.1.0/24"}`, "next"},
		{"next outside", doc("10.20.1.0/24", "10.20.2.2", "", "", 0), "not inside"},
		{"next is the gateway", doc("10.20.1.0/24", "10.20.1.1", "", "", 0), "reserved"},
		{"next mapped", doc("10.20.1.0/24", "::ffff:10.20.1.2", "", "", 0), "not inside"},
		{"allocated outside", doc("10.20.1.0/24", "10.20.1.2", `"10.20.2.9":"a"`, "", 0), "outside"},
		{"allocated gateway", doc("10.20.1.0/24", "10.20.1.2", `"10.20.1.1":"a"`, "", 0), "reserved"},
		{"allocated network", doc("10.20.1.0/24", "10.20.1.2", `"10.20.1.0":"a"`, "", 0), "reserved"},
		{"allocated broadcast", doc("10.20.1.0/24", "10.20.1.2", `"10.20.1.255":"a"`, "", 0), "reserved"},
		{"allocated malformed", doc("10.20.1.0/24", "10.20.1.2", `"10.20.1.x":"a"`, "", 0), "address"},
		{"allocated leading zero", doc("10.20.1.0/24", "10.20.1.2", `"10.20.1.09":"a"`, "", 0), "address"},
		{"allocated IPv6", doc("10.20.1.0/24", "10.20.1.2", `"fd00::9":"a"`, "", 0), "not IPv4"},
		{"allocated mapped", doc("10.20.1.0/24", "10.20.1.2", `"::ffff:10.20.1.9":"a"`, "", 0), "not IPv4"},
		{"released outside", doc("10.20.1.0/24", "10.20.1.2", "", `"10.20.3.3":0`, 1), "outside"},
		{"released broadcast", doc("10.20.1.0/24", "10.20.1.2", "", `"10.20.1.255":0`, 1), "reserved"},
		{"allocated and released", doc("10.20.1.0/24", "10.20.1.4", `"10.20.1.2":"a","10.20.1.3":"b"`, `"10.20.1.3":0`, 1), "both"},
		{"release not below seq", doc("10.20.1.0/24", "10.20.1.4", `"10.20.1.2":"a"`, `"10.20.1.3":1`, 1), "not below seq"},
		{"repeated release number", doc("10.20.1.0/24", "10.20.1.4", "", `"10.20.1.2":0,"10.20.1.3":0`, 1), "repeats"},
		{"cursor skips an address", doc("10.20.1.0/24", "10.20.1.5", `"10.20.1.2":"workload/web"`, `"10.20.1.3":4`, 5), "skips 1"},
		{"cursor at the end skips many", doc("10.20.1.0/24", "10.20.1.255", `"10.20.1.2":"a"`, "", 0), "skips 252"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAlloc(t, "10.9.9.0/29")
			_, err := a.Allocate("keep")
			require.NoError(t, err)
			before, err := a.MarshalJSON()
			require.NoError(t, err)

			err = a.UnmarshalJSON([]byte(tt.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.msg)
			after, err := a.MarshalJSON()
			require.NoError(t, err)
			assert.Equal(t, string(before), string(after), "a failed UnmarshalJSON leaves the allocator unchanged")
		})
	}

	t.Run("the valid base document loads", func(t *testing.T) {
		var a Allocator
		require.NoError(t, a.UnmarshalJSON([]byte(ok)))
	})
	t.Run("cursor at the end with every address accounted for loads", func(t *testing.T) {
		var a Allocator
		require.NoError(t, a.UnmarshalJSON([]byte(doc("10.0.0.0/30", "10.0.0.3", "", `"10.0.0.2":0`, 1))))
		ip, err := a.Allocate("w")
		require.NoError(t, err)
		assert.Equal(t, addr("10.0.0.2"), ip)
	})
}
