package dnsresolver

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatsCountAnswersByRcode(t *testing.T) {
	r := newTestResolver(t, testConfig(), testHeld())
	answers := new(int)
	r.opts.OnAnswer = func() { *answers++ }
	require.Nil(t, r.Stats().Queries, "nothing answered yet")

	// Through ServeDNS (TCP here) and through the UDP fast path, on a miss
	// and on a hit: every answer counts once.
	ask(t, r, "web.shop.internal.", dns.TypeA, true, workloadSrc)
	ask(t, r, "nope.shop.internal.", dns.TypeA, true, workloadSrc)
	c := newUDPCache(r)
	for range 2 {
		for _, name := range []string{"web.shop.internal.", "example.com."} {
			_, ok := c.answer(packQuery(t, name, dns.TypeA, nil), workloadSrc)
			require.True(t, ok)
		}
	}
	bad := new(dns.Msg)
	bad.SetQuestion("web.shop.internal.", dns.TypeA)
	bad.SetEdns0(1232, false)
	bad.IsEdns0().SetVersion(1)
	send(t, r, bad, false, workloadSrc)

	assert.Equal(t, map[string]uint64{"NOERROR": 3, "NXDOMAIN": 1, "REFUSED": 2, "BADVERS": 1}, r.Stats().Queries)
	assert.Equal(t, 7, *answers, "OnAnswer is told of every answer")
}

// TestUDPFastPathHitDoesNotAllocate keeps the fast path's promise that a
// cached answer costs no allocation, counting included.
func TestUDPFastPathHitDoesNotAllocate(t *testing.T) {
	r := newTestResolver(t, testConfig(), testHeld())
	c := newUDPCache(r)
	pkt := packQuery(t, "web.shop.internal.", dns.TypeA, nil)
	_, ok := c.answer(pkt, workloadSrc)
	require.True(t, ok)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := c.answer(pkt, workloadSrc); !ok {
			t.Fatal("not answered")
		}
	})
	assert.Zero(t, allocs)
	assert.Equal(t, uint64(1002), r.Stats().Queries["NOERROR"])
}

func TestRcodeName(t *testing.T) {
	assert.Equal(t, "NXDOMAIN", rcodeName(dns.RcodeNameError))
	assert.Equal(t, "RCODE12", rcodeName(12))
}

// BenchmarkUDPFastPathHit is the cost of answering a cached plain query,
// counting included (compare with the count removed to see its cost).
func BenchmarkUDPFastPathHit(b *testing.B) {
	r := newTestResolver(b, testConfig(), testHeld())
	c := newUDPCache(r)
	pkt := packQuery(b, "web.shop.internal.", dns.TypeA, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.answer(pkt, workloadSrc); !ok {
			b.Fatal("not answered")
		}
	}
}
