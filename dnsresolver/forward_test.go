package dnsresolver

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// upstream is a fake authoritative resolver on 127.0.0.1 that counts the
// queries it answers: example.com has an A record with TTL ttl, every other
// name is NXDOMAIN with a SOA whose negative TTL is 60.
type upstream struct {
	addr    netip.AddrPort
	queries atomic.Int32
	ttl     uint32
}

func newUpstream(t *testing.T, ttl uint32) *upstream {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &upstream{addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(), ttl: ttl}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		u.queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(req)
		if strings.EqualFold(req.Question[0].Name, "example.com.") {
			rr, _ := dns.NewRR("example.com. 300 IN A 198.19.7.2")
			rr.Header().Ttl = u.ttl
			m.Answer = append(m.Answer, rr)
		} else {
			soa, _ := dns.NewRR("com. 900 IN SOA ns.com. h.com. 1 2 3 4 60")
			m.Ns = append(m.Ns, soa)
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return u
}

func newTestForwarder(t *testing.T, size int) *Forwarder {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	f := NewForwarder(c, nil, size)
	t.Cleanup(func() { require.NoError(t, f.Close()); require.NoError(t, f.Close()) })
	return f
}

func TestForwarderCachesWithinTTL(t *testing.T) {
	up := newUpstream(t, 300)
	f := newTestForwarder(t, 0)
	q := dns.Question{Name: "Example.COM.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	for range 3 {
		m, err := f.Exchange(context.Background(), q, []netip.AddrPort{up.addr})
		require.NoError(t, err)
		require.Len(t, m.Answer, 1)
		assert.Equal(t, "198.19.7.2", m.Answer[0].(*dns.A).A.String())
	}
	assert.EqualValues(t, 1, up.queries.Load(), "answered from the cache")

	// An aged entry has its TTL lowered; an expired one is asked again.
	key := cacheKey{name: "example.com.", qtype: dns.TypeA}
	m, ok := f.cached(key, time.Now().Add(100*time.Second))
	require.True(t, ok)
	assert.InDelta(t, 200, m.Answer[0].Header().Ttl, 1)
	_, ok = f.cached(key, time.Now().Add(301*time.Second))
	assert.False(t, ok, "expired")

	// A negative answer is kept for the SOA's negative TTL (60), not 900.
	nx := dns.Question{Name: "nope.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	m, err := f.Exchange(context.Background(), nx, []netip.AddrPort{up.addr})
	require.NoError(t, err)
	assert.Equal(t, dns.RcodeNameError, m.Rcode)
	_, ok = f.cached(cacheKey{name: "nope.com.", qtype: dns.TypeA}, time.Now().Add(61*time.Second))
	assert.False(t, ok)
}

func TestForwarderZeroTTLIsNotKept(t *testing.T) {
	up := newUpstream(t, 0)
	f := newTestForwarder(t, 0)
	q := dns.Question{Name: "example.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	for range 2 {
		_, err := f.Exchange(context.Background(), q, []netip.AddrPort{up.addr})
		require.NoError(t, err)
	}
	assert.EqualValues(t, 2, up.queries.Load())
}

func TestForwarderCacheIsBounded(t *testing.T) {
	up := newUpstream(t, 300)
	f := newTestForwarder(t, 4)
	for i := range 20 {
		q := dns.Question{Name: dns.Fqdn(string(rune('a'+i)) + ".com"), Qtype: dns.TypeA, Qclass: dns.ClassINET}
		_, err := f.Exchange(context.Background(), q, []netip.AddrPort{up.addr})
		require.NoError(t, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.LessOrEqual(t, len(f.cache), 4)
}

func TestForwarderTriesTheNextUpstream(t *testing.T) {
	// A socket that never answers stands for a dead upstream.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = dead.Close() })
	up := newUpstream(t, 300)
	f := newTestForwarder(t, 0)
	q := dns.Question{Name: "example.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	m, err := f.Exchange(context.Background(), q, []netip.AddrPort{dead.LocalAddr().(*net.UDPAddr).AddrPort(), up.addr})
	require.NoError(t, err)
	assert.Len(t, m.Answer, 1)

	_, err = f.Exchange(context.Background(), dns.Question{Name: "x.org.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
		[]netip.AddrPort{dead.LocalAddr().(*net.UDPAddr).AddrPort()})
	require.ErrorIs(t, err, ErrNoAnswer)
}

func TestResolverForwardsOnlyOutsideItsNames(t *testing.T) {
	up := newUpstream(t, 300)
	src := netip.MustParseAddr("10.20.1.5")
	cfg := testConfig()
	refused := newTestResolver(t, cfg, testHeld())
	refused.opts.Forwarder = newTestForwarder(t, 0)
	assert.Equal(t, dns.RcodeRefused, ask(t, refused, "example.com.", dns.TypeA, false, src).msgs[0].Rcode,
		"no upstreams (no egress): refused")

	cfg.Upstreams = []netip.AddrPort{up.addr}
	r := newTestResolver(t, cfg, testHeld())
	assert.Equal(t, dns.RcodeRefused, ask(t, r, "example.com.", dns.TypeA, false, src).msgs[0].Rcode,
		"no forwarder: refused")
	r.opts.Forwarder = newTestForwarder(t, 0)

	got := ask(t, r, "example.com.", dns.TypeA, false, src).msgs[0]
	assert.Equal(t, dns.RcodeSuccess, got.Rcode)
	assert.True(t, got.RecursionAvailable)
	assert.Equal(t, []string{"A 198.19.7.2"}, render(got.Answer))
	assert.Equal(t, dns.RcodeNameError, ask(t, r, "nope.com.", dns.TypeA, false, src).msgs[0].Rcode)
	q := r.Stats().Queries
	assert.Equal(t, uint64(1), q["NOERROR"], "forwarded answers are counted: %v", q)
	assert.Equal(t, uint64(1), q["NXDOMAIN"], "forwarded answers are counted: %v", q)

	before := up.queries.Load()
	for _, name := range []string{"web.shop.internal.", "nothing.shop.internal.", "5.1.20.10.in-addr.arpa."} {
		ask(t, r, name, dns.TypeA, false, src)
	}
	ask(t, r, "shop.internal.", dns.TypeAXFR, true, src)
	assert.Equal(t, before, up.queries.Load(), "the zone and its reverse never go upstream")

	// The fast path hands forwarded names to ServeDNS instead of caching.
	c := newUDPCache(r)
	_, ok := c.answer(packQuery(t, "example.com.", dns.TypeA, nil), src)
	assert.False(t, ok)
}

func TestUpstreamsChecked(t *testing.T) {
	cfg := testConfig()
	cfg.Upstreams = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("192.0.2.53"), 0)}
	_, err := cfg.normalized()
	require.ErrorIs(t, err, ErrInvalidConfig)
}
