package dnsresolver

import (
	"fmt"
	"net/netip"
	"strconv"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServeDNSAnswers(t *testing.T) {
	r := newTestResolver(t, testConfig(), testHeld())
	const (
		refused = dns.RcodeRefused
		nx      = dns.RcodeNameError
		ok      = dns.RcodeSuccess
	)
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		tcp    bool
		src    netip.Addr
		rcode  int
		answer []string
		ns     []string // types in the authority section
	}{
		{name: "A on two nodes", qname: "web.shop.internal.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"A 10.20.1.5", "A 10.20.2.5"}},
		{name: "AAAA", qname: "web.shop.internal.", qtype: dns.TypeAAAA, rcode: ok,
			answer: []string{"AAAA fd3c:9a1e:77b2:1::5"}},
		{name: "A of a member's workload", qname: "api.shop.internal.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"A 10.20.2.7"}},
		{name: "ANY", qname: "api.shop.internal.", qtype: dns.TypeANY, rcode: ok,
			answer: []string{"A 10.20.2.7", "AAAA fd3c:9a1e:77b2:2::7"}},
		{name: "over TCP", qname: "cache.shop.internal.", qtype: dns.TypeA, tcp: true, rcode: ok,
			answer: []string{"A 10.20.3.9"}},
		{name: "mixed case", qname: "WeB.SHOP.Internal.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"A 10.20.1.5", "A 10.20.2.5"}},
		{name: "escaped letters", qname: `w\101b.shop.internal.`, qtype: dns.TypeA, rcode: ok,
			answer: []string{"A 10.20.1.5", "A 10.20.2.5"}},
		{name: "known name without that type", qname: "db.shop.internal.", qtype: dns.TypeAAAA, rcode: ok, ns: []string{"SOA"}},
		{name: "known name, TXT", qname: "web.shop.internal.", qtype: dns.TypeTXT, rcode: ok, ns: []string{"SOA"}},
		{name: "unknown name", qname: "nothere.shop.internal.", qtype: dns.TypeA, rcode: nx, ns: []string{"SOA"}},
		{name: "below a workload", qname: "x.web.shop.internal.", qtype: dns.TypeA, rcode: nx, ns: []string{"SOA"}},
		{name: "escaped dot is not a label break", qname: `web\.shop.internal.`, qtype: dns.TypeA, rcode: refused},
		{name: "apex SOA", qname: "shop.internal.", qtype: dns.TypeSOA, rcode: ok,
			answer: []string{"SOA n1.node.shop.internal. hostmaster.shop.internal. " + serialText(r) + " 60 10 3600 1"}},
		{name: "apex NS", qname: "shop.internal.", qtype: dns.TypeNS, rcode: ok,
			answer: []string{"NS n1.node.shop.internal."}},
		{name: "apex A", qname: "shop.internal.", qtype: dns.TypeA, rcode: ok, ns: []string{"SOA"}},
		{name: "this node", qname: "n1.node.shop.internal.", qtype: dns.TypeANY, rcode: ok,
			answer: []string{"A 10.20.1.1", "AAAA fd3c:9a1e:77b2:1::1"}},
		{name: "a member", qname: "n2.node.shop.internal.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"A 10.20.2.1"}},
		{name: "a member without IPv6", qname: "n3.node.shop.internal.", qtype: dns.TypeAAAA, rcode: ok, ns: []string{"SOA"}},
		{name: "an unknown node", qname: "n9.node.shop.internal.", qtype: dns.TypeA, rcode: nx, ns: []string{"SOA"}},
		{name: "the node parent", qname: "node.shop.internal.", qtype: dns.TypeA, rcode: ok, ns: []string{"SOA"}},
		{name: "below a node", qname: "x.n1.node.shop.internal.", qtype: dns.TypeA, rcode: nx, ns: []string{"SOA"}},
		{name: "PTR v4", qname: "5.1.20.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: ok,
			answer: []string{"PTR web.shop.internal."}},
		{name: "PTR v4 of a member's workload", qname: "7.2.20.10.IN-ADDR.ARPA.", qtype: dns.TypePTR, rcode: ok,
			answer: []string{"PTR api.shop.internal."}},
		{name: "PTR of a gateway", qname: "1.2.20.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: ok,
			answer: []string{"PTR n2.node.shop.internal."}},
		{name: "PTR v6", qname: "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.2.b.7.7.e.1.a.9.c.3.d.f.ip6.arpa.", qtype: dns.TypePTR,
			rcode: ok, answer: []string{"PTR web.shop.internal."}},
		{name: "PTR v6 unknown", qname: "6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.2.b.7.7.e.1.a.9.c.3.d.f.ip6.arpa.", qtype: dns.TypePTR,
			rcode: nx, ns: []string{"SOA"}},
		{name: "PTR v6 partial with addresses below", qname: "1.0.0.0.2.b.7.7.e.1.a.9.c.3.d.f.ip6.arpa.", qtype: dns.TypePTR,
			rcode: ok, ns: []string{"SOA"}},
		{name: "PTR v6 zone apex", qname: "2.b.7.7.e.1.a.9.c.3.d.f.ip6.arpa.", qtype: dns.TypeSOA, rcode: ok,
			answer: []string{"SOA n1.node.shop.internal. hostmaster.shop.internal. " + serialText(r) + " 60 10 3600 1"}},
		{name: "PTR v6 outside the range", qname: "1.0.0.0.2.b.7.7.e.1.a.9.c.3.d.e.ip6.arpa.", qtype: dns.TypePTR, rcode: refused},
		{name: "PTR unknown address in range", qname: "99.1.20.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: nx, ns: []string{"SOA"}},
		{name: "A of a reverse name", qname: "5.1.20.10.in-addr.arpa.", qtype: dns.TypeA, rcode: ok, ns: []string{"SOA"}},
		{name: "reverse name with addresses below", qname: "1.20.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: ok, ns: []string{"SOA"}},
		{name: "reverse name without addresses below", qname: "9.20.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: nx, ns: []string{"SOA"}},
		{name: "reverse zone apex NS", qname: "20.10.in-addr.arpa.", qtype: dns.TypeNS, rcode: ok,
			answer: []string{"NS n1.node.shop.internal."}},
		{name: "below a full reverse address", qname: "x.5.1.20.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: nx, ns: []string{"SOA"}},
		{name: "octet with a leading zero", qname: "05.1.20.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: nx, ns: []string{"SOA"}},
		{name: "PTR outside the range", qname: "5.1.21.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: refused},
		{name: "reverse name above the range", qname: "10.in-addr.arpa.", qtype: dns.TypePTR, rcode: refused},
		{name: "in-addr.arpa itself", qname: "in-addr.arpa.", qtype: dns.TypeSOA, rcode: refused},
		{name: "outside the zone", qname: "example.com.", qtype: dns.TypeA, rcode: refused},
		{name: "another network", qname: "web.bank.internal.", qtype: dns.TypeA, rcode: refused},
		{name: "the parent of the zone", qname: "internal.", qtype: dns.TypeSOA, rcode: refused},
		{name: "the root", qname: ".", qtype: dns.TypeNS, rcode: refused},
		{name: "zone transfer of the zone", qname: "shop.internal.", qtype: dns.TypeAXFR, tcp: true, rcode: refused},
		{name: "zone transfer of a reverse zone", qname: "20.10.in-addr.arpa.", qtype: dns.TypeAXFR, tcp: true, rcode: refused},
		{name: "transfer zone from a workload", qname: "n1._local.shop.internal.", qtype: dns.TypeSOA, rcode: refused},
		{name: "transfer zone AXFR from a workload", qname: "n1._local.shop.internal.", qtype: dns.TypeAXFR, tcp: true, rcode: refused},
		{name: "transfer zone SOA from a member", qname: "n1._local.shop.internal.", qtype: dns.TypeSOA, src: memberSrc, rcode: ok,
			answer: []string{"SOA n1.node.shop.internal. hostmaster.shop.internal. " + localSerialText(r) + " 60 10 3600 1"}},
		{name: "transfer zone A from a member", qname: "n1._local.shop.internal.", qtype: dns.TypeA, src: memberSrc, rcode: ok, ns: []string{"SOA"}},
		{name: "AXFR over UDP from a member", qname: "n1._local.shop.internal.", qtype: dns.TypeAXFR, src: memberSrc, rcode: refused},
		{name: "IXFR from a member", qname: "n1._local.shop.internal.", qtype: dns.TypeIXFR, tcp: true, src: memberSrc, rcode: dns.RcodeNotImplemented},
		{name: "another node's transfer zone", qname: "n2._local.shop.internal.", qtype: dns.TypeSOA, src: memberSrc, rcode: refused},
		{name: "the transfer zones' parent", qname: "_local.shop.internal.", qtype: dns.TypeSOA, src: memberSrc, rcode: refused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src
			if !src.IsValid() {
				src = workloadSrc
			}
			rec := ask(t, r, tt.qname, tt.qtype, tt.tcp, src)
			require.Len(t, rec.msgs, 1)
			m := rec.msgs[0]
			assert.Equal(t, dns.RcodeToString[tt.rcode], dns.RcodeToString[m.Rcode])
			assert.True(t, m.Response)
			assert.Equal(t, tt.rcode != refused && tt.rcode != dns.RcodeNotImplemented, m.Authoritative, "AA")
			require.Len(t, m.Question, 1)
			asked := wireName(t, tt.qname) // as a client's resolver library would write it
			assert.Equal(t, asked, m.Question[0].Name)
			want := tt.answer
			if want == nil {
				want = []string{}
			}
			assert.Equal(t, want, render(m.Answer))
			for _, rr := range m.Answer {
				assert.Equal(t, asked, rr.Header().Name, "owner is the name as asked")
			}
			var ns []string
			for _, rr := range m.Ns {
				ns = append(ns, dns.TypeToString[rr.Header().Rrtype])
			}
			assert.Equal(t, tt.ns, ns)
			assert.False(t, m.Truncated)
		})
	}
}

// serialText is r's zone serial as text.
func serialText(r *Resolver) string { return strconv.FormatUint(uint64(r.view.Load().serial), 10) }

// localSerialText is r's transfer zone serial as text.
func localSerialText(r *Resolver) string {
	return strconv.FormatUint(uint64(r.view.Load().localSerial), 10)
}

func TestServeDNSNegativeAnswersCarryTheSOA(t *testing.T) {
	r := newTestResolver(t, testConfig(), testHeld())
	tests := []struct {
		name, qname, owner string
	}{
		{name: "forward", qname: "nothere.shop.internal.", owner: "shop.internal."},
		{name: "v4 reverse", qname: "99.1.20.10.in-addr.arpa.", owner: "20.10.in-addr.arpa."},
		{name: "v6 reverse", qname: "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.9.0.0.0.2.b.7.7.e.1.a.9.c.3.d.f.ip6.arpa.",
			owner: "2.b.7.7.e.1.a.9.c.3.d.f.ip6.arpa."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ask(t, r, tt.qname, dns.TypePTR, false, workloadSrc).msgs[0]
			require.Equal(t, dns.RcodeNameError, m.Rcode)
			require.Len(t, m.Ns, 1)
			soa, ok := m.Ns[0].(*dns.SOA)
			require.True(t, ok)
			assert.Equal(t, tt.owner, soa.Hdr.Name)
			assert.Equal(t, uint32(ttl), soa.Minttl)
		})
	}
}

func TestServeDNSApexNSHasGlue(t *testing.T) {
	r := newTestResolver(t, testConfig(), testHeld())
	m := ask(t, r, "shop.internal.", dns.TypeNS, false, workloadSrc).msgs[0]
	assert.Equal(t, []string{"A 10.20.1.1", "AAAA fd3c:9a1e:77b2:1::1"}, render(m.Extra))
	for _, rr := range m.Extra {
		assert.Equal(t, "n1.node.shop.internal.", rr.Header().Name)
	}
}

func TestServeDNSMalformed(t *testing.T) {
	r := newTestResolver(t, testConfig(), testHeld())
	query := func(edit func(m *dns.Msg)) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("web.shop.internal.", dns.TypeA)
		edit(m)
		return m
	}
	tests := []struct {
		name  string
		req   *dns.Msg
		rcode int
	}{
		{name: "no question", req: query(func(m *dns.Msg) { m.Question = nil }), rcode: dns.RcodeFormatError},
		{name: "two questions", req: query(func(m *dns.Msg) {
			m.Question = append(m.Question, dns.Question{Name: "db.shop.internal.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
		}), rcode: dns.RcodeFormatError},
		{name: "two OPT records", req: query(func(m *dns.Msg) { m.SetEdns0(1232, false).SetEdns0(4096, false) }), rcode: dns.RcodeFormatError},
		{name: "EDNS version 1", req: query(func(m *dns.Msg) {
			m.SetEdns0(1232, false)
			m.IsEdns0().SetVersion(1)
		}), rcode: dns.RcodeBadVers},
		{name: "class CHAOS", req: query(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), rcode: dns.RcodeRefused},
		{name: "class ANY", req: query(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassANY }), rcode: dns.RcodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := send(t, r, tt.req, false, workloadSrc)
			require.Len(t, rec.msgs, 1)
			m := rec.msgs[0]
			assert.Equal(t, dns.RcodeToString[tt.rcode], dns.RcodeToString[m.Rcode])
			assert.Equal(t, tt.req.Id, m.Id)
			assert.Empty(t, m.Answer)
			assert.False(t, m.Authoritative)
		})
	}

	t.Run("a response is not answered", func(t *testing.T) {
		req := query(func(m *dns.Msg) { m.Response = true })
		assert.Empty(t, send(t, r, req, false, workloadSrc).msgs)
	})
	t.Run("BADVERS carries an OPT", func(t *testing.T) {
		req := query(func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) })
		assert.NotNil(t, send(t, r, req, false, workloadSrc).msgs[0].IsEdns0())
	})
}

func TestServeDNSEDNS(t *testing.T) {
	r := newTestResolver(t, testConfig(), testHeld())
	t.Run("OPT echoed", func(t *testing.T) {
		q := new(dns.Msg)
		q.SetQuestion("web.shop.internal.", dns.TypeA)
		q.SetEdns0(4096, true)
		m := send(t, r, q, false, workloadSrc).msgs[0]
		opt := m.IsEdns0()
		require.NotNil(t, opt)
		assert.Equal(t, uint16(ednsSize), opt.UDPSize())
		assert.False(t, opt.Do(), "no DNSSEC")
		assert.Len(t, m.Answer, 2)
	})
	t.Run("no OPT without EDNS", func(t *testing.T) {
		m := ask(t, r, "web.shop.internal.", dns.TypeA, false, workloadSrc).msgs[0]
		assert.Nil(t, m.IsEdns0())
	})
}

// TestServeDNSUnknownOpcode checks RFC 1035's answer to an opcode other than
// QUERY and NOTIFY: NOTIMP with the request's opcode and RD, over UDP and
// TCP; the UDP fast path, which answers plain queries, leaves them to the
// server.
func TestServeDNSUnknownOpcode(t *testing.T) {
	r := newTestResolver(t, testConfig(), testHeld())
	c := newUDPCache(r)
	for op := range 16 {
		if op == dns.OpcodeQuery || op == dns.OpcodeNotify {
			continue
		}
		for _, rd := range []bool{true, false} {
			for _, tcp := range []bool{false, true} {
				name := fmt.Sprintf("opcode %d rd %v tcp %v", op, rd, tcp)
				t.Run(name, func(t *testing.T) {
					q := new(dns.Msg)
					q.SetQuestion("web.shop.internal.", dns.TypeA)
					q.Opcode, q.RecursionDesired = op, rd
					rec := send(t, r, q, tcp, workloadSrc)
					require.Len(t, rec.msgs, 1)
					m := rec.msgs[0]
					assert.Equal(t, "NOTIMP", dns.RcodeToString[m.Rcode])
					assert.Equal(t, q.Id, m.Id)
					assert.Equal(t, op, m.Opcode)
					assert.Equal(t, rd, m.RecursionDesired, "RD copied")
					assert.True(t, m.Response)
					assert.Empty(t, m.Answer)
					assert.False(t, m.Authoritative)
					if !tcp {
						pkt, err := q.Pack()
						require.NoError(t, err)
						_, ok := c.answer(pkt, workloadSrc)
						assert.False(t, ok, "the fast path leaves it to the server")
					}
				})
			}
		}
	}
}
