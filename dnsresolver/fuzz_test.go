package dnsresolver

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzServeDNS hands random messages to the handler, over UDP and TCP, from
// a workload or from a member. Invariants: no panic; every answer packs; it
// answers the request's id; no answer record is outside the zone or the
// network's reverse ranges; answer records only with NOERROR; over UDP the
// answer fits the client's size; an opcode other than QUERY and NOTIFY gets
// NOTIMP with the request's RD.
func FuzzServeDNS(f *testing.F) {
	seed := func(name string, qtype uint16, edit func(m *dns.Msg)) {
		b := packQuery(f, name, qtype, edit)
		f.Add(b, false, false)
		f.Add(b, true, true)
	}
	edns := func(m *dns.Msg) { m.SetEdns0(1232, false) }
	// Names in the zone, in the reverse zones, and outside.
	seed("web.shop.internal.", dns.TypeA, nil)
	seed("WEB.shop.internal.", dns.TypeAAAA, edns)
	seed("api.shop.internal.", dns.TypeANY, nil)
	seed("many.shop.internal.", dns.TypeANY, nil) // a large answer
	seed("shop.internal.", dns.TypeNS, nil)
	seed("n2.node.shop.internal.", dns.TypeA, nil)
	seed("5.1.20.10.in-addr.arpa.", dns.TypePTR, nil)
	seed("1.20.10.in-addr.arpa.", dns.TypePTR, nil)
	seed("5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.2.b.7.7.e.1.a.9.c.3.d.f.ip6.arpa.", dns.TypePTR, nil)
	seed("example.com.", dns.TypeA, nil)
	// The transfer zone, NOTIFY, malformed and odd messages.
	seed("n1._local.shop.internal.", dns.TypeAXFR, nil)
	seed("n1._local.shop.internal.", dns.TypeSOA, nil)
	seed("n2._local.shop.internal.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify })
	seed("web.shop.internal.", dns.TypeA, func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate })
	seed("web.shop.internal.", dns.TypeA, func(m *dns.Msg) { m.Opcode, m.RecursionDesired = dns.OpcodeStatus, false })
	seed("web.shop.internal.", dns.TypeA, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) })
	seed("web.shop.internal.", dns.TypeA, func(m *dns.Msg) { edns(m); m.IsEdns0().SetVersion(3) })
	f.Add([]byte{}, false, false)

	cfg, held := manyConfig(40)
	cfg.Local = testConfig().Local
	cfg.Members = append(cfg.Members, testConfig().Members[0])
	held["n2"] = testHeld()["n2"]
	r := newTestResolver(f, cfg, held)
	v := r.view.Load()

	f.Fuzz(func(t *testing.T, b []byte, tcp, fromMember bool) {
		req := new(dns.Msg)
		if req.Unpack(b) != nil {
			return // the server answers those itself, with FORMERR
		}
		src := workloadSrc
		if fromMember {
			src = memberSrc
		}
		rec := newRecorder(tcp, src)
		r.ServeDNS(rec, req)
		if rec.err != nil {
			t.Fatalf("answer does not pack: %v\nrequest: %v", rec.err, req)
		}
		if req.Response {
			if len(rec.msgs) > 0 {
				t.Fatalf("answered a response")
			}
			return
		}
		if len(rec.msgs) == 0 {
			t.Fatalf("no answer to %v", req)
		}
		limit := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			limit = max(limit, min(int(opt.UDPSize()), maxUDPSize))
		}
		for i, m := range rec.msgs {
			if m.Id != req.Id || !m.Response {
				t.Fatalf("answer %d: id %d response %v for request id %d", i, m.Id, m.Response, req.Id)
			}
			if !tcp && rec.sizes[i] > limit {
				t.Fatalf("UDP answer of %d bytes, limit %d", rec.sizes[i], limit)
			}
			if req.Opcode != dns.OpcodeQuery && req.Opcode != dns.OpcodeNotify &&
				(m.Rcode != dns.RcodeNotImplemented || m.RecursionDesired != req.RecursionDesired) {
				t.Fatalf("opcode %d answered %s, RD %v (want NOTIMP, RD %v)", req.Opcode, dns.RcodeToString[m.Rcode], m.RecursionDesired, req.RecursionDesired)
			}
			if len(m.Answer) > 0 && m.Rcode != dns.RcodeSuccess {
				t.Fatalf("answer records with rcode %s", dns.RcodeToString[m.Rcode])
			}
			for _, rr := range m.Answer {
				if !inAuthority(v, rr.Header().Name) {
					t.Fatalf("answer outside the zone: %v\nrequest: %v", rr, req)
				}
			}
		}
	})
}

// inAuthority reports whether name is in the zone of v or in the reverse
// zone of one of its ranges (which must be whole octets or nibbles long).
// It uses miekg/dns's own name handling, not the handler's.
func inAuthority(v *view, name string) bool {
	name = dns.CanonicalName(name)
	if dns.IsSubDomain(v.zone, name) {
		return true
	}
	for _, r := range v.ranges {
		if dns.IsSubDomain(reverseName(r), name) {
			return true
		}
	}
	return false
}
