package dnsresolver

import (
	"net"
	"net/netip"

	"github.com/miekg/dns"
)

const (
	// ttl is the TTL of every record and of negative answers: names come and
	// go within a second, so clients must not keep them longer.
	ttl = 1
	// maxUDPSize caps the UDP answer size a client's EDNS0 may ask for.
	maxUDPSize = 4096
	// ednsSize is the UDP payload size this server advertises.
	ednsSize = 1232
	// transferChunk is how many records go in one message of a transfer.
	transferChunk = 256
)

// ServeDNS answers req from memory (the latest view) and writes the answer to
// w. It implements dns.Handler and is safe for concurrent use. It never
// answers a message that is itself a response. Whether w is TCP decides the
// size limit (and whether a transfer is allowed); w's remote address decides
// whether the peer is a member, which alone may use the transfer zones.
func (r *Resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if a, ok := w.RemoteAddr().(*slowAddr); ok {
		defer a.done()
	}
	if req == nil || req.Response {
		return
	}
	v := r.view.Load()
	tcp := isTCP(w.LocalAddr())
	src := addrOf(w.RemoteAddr())
	if r.forwards(v, req) {
		r.serveForwarded(w, v, req, tcp)
		return
	}
	resp, xfr := r.answer(v, req, src, tcp)
	if xfr {
		r.answered(dns.RcodeSuccess)
		v.writeTransfer(w, req)
		return
	}
	fit(resp, req, tcp)
	r.answered(resp.Rcode)
	if err := w.WriteMsg(resp); err != nil {
		r.log.Debug("writing answer", "to", src, "err", err)
	}
}

// answer builds the answer to req as seen from src. xfr reports that the
// answer is this node's transfer zone, which ServeDNS streams instead.
func (r *Resolver) answer(v *view, req *dns.Msg, src netip.Addr, tcp bool) (resp *dns.Msg, xfr bool) {
	resp = new(dns.Msg)
	resp.SetReply(req)
	if req.Opcode != dns.OpcodeQuery && req.Opcode != dns.OpcodeNotify {
		// RFC 1035 4.1.1: a kind of query this server does not support
		// is NOTIMP, and RD is copied into every response (SetReply
		// copies it only for QUERY).
		resp.RecursionDesired = req.RecursionDesired
		return rcode(resp, dns.RcodeNotImplemented), false
	}
	if len(req.Question) != 1 || countOPT(req) > 1 {
		return rcode(resp, dns.RcodeFormatError), false
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		return rcode(resp, dns.RcodeBadVers), false
	}
	q := req.Question[0]
	labels, ok := splitName(q.Name)
	if !ok {
		return rcode(resp, dns.RcodeFormatError), false
	}
	if q.Qclass != dns.ClassINET {
		return rcode(resp, dns.RcodeRefused), false
	}
	if req.Opcode == dns.OpcodeNotify {
		return r.notified(v, resp, q, labels, src), false
	}
	if rel, ok := v.relative(labels); ok {
		return v.forward(resp, q, rel, src, tcp)
	}
	if p, extra, ok := parseReverse(labels); ok {
		if rng, ok := v.reverseRange(p); ok {
			return v.reverse(resp, q, p, rng, extra), false
		}
	}
	return rcode(resp, dns.RcodeRefused), false
}

// forward answers a name in the zone; rel are its labels left of the zone.
func (v *view) forward(resp *dns.Msg, q dns.Question, rel []string, src netip.Addr, tcp bool) (*dns.Msg, bool) {
	n := len(rel)
	if n > 0 && rel[n-1] == localLabel {
		return v.transferZone(resp, q, rel, src, tcp)
	}
	if isTransfer(q.Qtype) {
		return rcode(resp, dns.RcodeRefused), false
	}
	resp.Authoritative = true
	soa := v.soa(v.zone, v.serial)
	switch {
	case n == 0:
		return v.apex(resp, q, soa), false
	case n == 1:
		if a, ok := v.names[rel[0]]; ok {
			return addresses(resp, q, a, soa), false
		}
		if rel[0] == nodeLabel { // the parent of the node names
			return nodata(resp, soa), false
		}
	case n == 2 && rel[1] == nodeLabel:
		if a, ok := v.nodes[rel[0]]; ok {
			return addresses(resp, q, a, soa), false
		}
	}
	return nxdomain(resp, soa), false
}

// reverse answers the reverse name of prefix p (extra: with labels left of
// it), which lies in the network range rng.
func (v *view) reverse(resp *dns.Msg, q dns.Question, p, rng netip.Prefix, extra bool) *dns.Msg {
	if isTransfer(q.Qtype) {
		return rcode(resp, dns.RcodeRefused)
	}
	resp.Authoritative = true
	apex := netip.PrefixFrom(p.Addr(), apexBits(rng)).Masked()
	soa := v.soa(reverseName(apex), v.serial)
	switch {
	case extra:
		return nxdomain(resp, soa)
	case p.Bits() == p.Addr().BitLen():
		names, ok := v.ptr[p.Addr()]
		if !ok {
			return nxdomain(resp, soa)
		}
		if q.Qtype != dns.TypePTR && q.Qtype != dns.TypeANY {
			return nodata(resp, soa)
		}
		for _, name := range names {
			resp.Answer = append(resp.Answer, &dns.PTR{Hdr: header(q.Name, dns.TypePTR), Ptr: name})
		}
		return resp
	case p.Bits() == apex.Bits():
		return v.apex(resp, q, soa)
	case v.anyUnder(p): // a name with addresses below it
		return nodata(resp, soa)
	}
	return nxdomain(resp, soa)
}

// apex answers a query for the apex of a zone whose SOA is soa.
func (v *view) apex(resp *dns.Msg, q dns.Question, soa *dns.SOA) *dns.Msg {
	if q.Qtype == dns.TypeSOA || q.Qtype == dns.TypeANY {
		a := *soa
		a.Hdr.Name = q.Name
		resp.Answer = append(resp.Answer, &a)
	}
	if q.Qtype == dns.TypeNS || q.Qtype == dns.TypeANY {
		resp.Answer = append(resp.Answer, &dns.NS{Hdr: header(q.Name, dns.TypeNS), Ns: soa.Ns})
		// Glue: the addresses of the name server, this node.
		glue := dns.Question{Name: soa.Ns, Qtype: dns.TypeANY}
		resp.Extra = append(resp.Extra, addresses(new(dns.Msg), glue, v.nodes[v.cfg.NodeID], nil).Answer...)
	}
	if len(resp.Answer) == 0 {
		return nodata(resp, soa)
	}
	return resp
}

// transferZone answers a name under _local: this node's transfer zone,
// for members only.
func (v *view) transferZone(resp *dns.Msg, q dns.Question, rel []string, src netip.Addr, tcp bool) (*dns.Msg, bool) {
	if _, member := v.members[src]; !member || len(rel) != 2 || rel[0] != v.cfg.NodeID {
		return rcode(resp, dns.RcodeRefused), false
	}
	resp.Authoritative = true
	soa := v.soa(v.cfg.localZone(v.cfg.NodeID), v.localSerial)
	switch q.Qtype {
	case dns.TypeSOA:
		a := *soa
		a.Hdr.Name = q.Name
		resp.Answer = append(resp.Answer, &a)
		return resp, false
	case dns.TypeAXFR:
		if !tcp {
			return rcode(resp, dns.RcodeRefused), false
		}
		return resp, true
	case dns.TypeIXFR:
		return rcode(resp, dns.RcodeNotImplemented), false
	}
	return nodata(resp, soa), false
}

// notified acknowledges a NOTIFY from a member for its own transfer zone and
// wakes the goroutine that fetches it; any other NOTIFY is refused.
func (r *Resolver) notified(v *view, resp *dns.Msg, q dns.Question, labels []string, src netip.Addr) *dns.Msg {
	id, member := v.members[src]
	rel, inZone := v.relative(labels)
	if !member || !inZone || len(rel) != 2 || rel[0] != id || rel[1] != localLabel || q.Qtype != dns.TypeSOA {
		return rcode(resp, dns.RcodeRefused)
	}
	r.wake(id)
	resp.Authoritative = true
	return resp
}

// writeTransfer streams this node's transfer zone to w: SOA, every record,
// SOA.
func (v *view) writeTransfer(w dns.ResponseWriter, req *dns.Msg) {
	zone := v.cfg.localZone(v.cfg.NodeID)
	soa := v.soa(zone, v.localSerial)
	rrs := []dns.RR{soa}
	for _, rec := range v.cfg.Local {
		q := dns.Question{Name: rec.Name + "." + zone, Qtype: dns.TypeANY}
		var a addrs
		a.add(rec.IPv4)
		a.add(rec.IPv6)
		m := addresses(new(dns.Msg), q, a, nil)
		rrs = append(rrs, m.Answer...)
	}
	rrs = append(rrs, soa)
	for len(rrs) > 0 {
		n := min(len(rrs), transferChunk)
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		m.Compress = true
		m.Answer = rrs[:n]
		rrs = rrs[n:]
		if countOPT(req) == 1 {
			m.SetEdns0(ednsSize, false)
		}
		if err := w.WriteMsg(m); err != nil {
			return
		}
	}
}

// addresses answers q with the addresses a of type q.Qtype (both for ANY);
// NODATA with soa when there are none of that type.
func addresses(resp *dns.Msg, q dns.Question, a addrs, soa *dns.SOA) *dns.Msg {
	if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
		for _, x := range a.v4 {
			resp.Answer = append(resp.Answer, &dns.A{Hdr: header(q.Name, dns.TypeA), A: x.AsSlice()})
		}
	}
	if q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY {
		for _, x := range a.v6 {
			resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: header(q.Name, dns.TypeAAAA), AAAA: x.AsSlice()})
		}
	}
	if len(resp.Answer) == 0 {
		return nodata(resp, soa)
	}
	return resp
}

// soa returns the SOA record of the zone owner with serial.
func (v *view) soa(owner string, serial uint32) *dns.SOA {
	return &dns.SOA{
		Hdr:     header(owner, dns.TypeSOA),
		Ns:      v.cfg.NodeID + "." + nodeLabel + "." + v.zone,
		Mbox:    "hostmaster." + v.zone,
		Serial:  serial,
		Refresh: 60,
		Retry:   10,
		Expire:  3600,
		Minttl:  ttl,
	}
}

// fit adds EDNS0 to resp when req has it and truncates resp to what the
// client can take: over UDP 512 bytes or the client's EDNS0 size (at most
// maxUDPSize), over TCP 64 KiB.
func fit(resp, req *dns.Msg, tcp bool) {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil && countOPT(req) == 1 {
		size = max(size, int(opt.UDPSize()))
		resp.SetEdns0(ednsSize, false)
	}
	limit := min(size, maxUDPSize)
	if tcp {
		limit = dns.MaxMsgSize
	}
	resp.Truncate(limit)
}

// nodata makes resp a NOERROR answer without records, soa (if any) in the
// authority section.
func nodata(resp *dns.Msg, soa *dns.SOA) *dns.Msg {
	if soa != nil {
		resp.Ns = append(resp.Ns, soa)
	}
	return resp
}

// nxdomain makes resp an NXDOMAIN answer with soa in the authority section.
func nxdomain(resp *dns.Msg, soa *dns.SOA) *dns.Msg {
	resp.Rcode = dns.RcodeNameError
	return nodata(resp, soa)
}

// rcode makes resp an answer with code and nothing else.
func rcode(resp *dns.Msg, code int) *dns.Msg {
	resp.Rcode = code
	resp.Authoritative = false
	resp.Answer, resp.Ns, resp.Extra = nil, nil, nil
	return resp
}

// header returns a record header for name and typ in class IN.
func header(name string, typ uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: ttl}
}

// isTransfer reports whether t asks for a zone transfer.
func isTransfer(t uint16) bool { return t == dns.TypeAXFR || t == dns.TypeIXFR }

// countOPT counts the OPT records of m; more than one is malformed.
func countOPT(m *dns.Msg) int {
	n := 0
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			n++
		}
	}
	return n
}

// isTCP reports whether the local address a is a TCP one.
func isTCP(a net.Addr) bool {
	_, ok := a.(*net.TCPAddr)
	return ok
}

// addrOf returns the IP address of a (UDP or TCP), unmapped; the zero Addr
// for anything else.
func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *slowAddr:
		return a.AddrPort().Addr().Unmap().WithZone("")
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap().WithZone("")
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap().WithZone("")
	}
	return netip.Addr{}
}
