package dnsresolver

import (
	"strconv"
	"sync/atomic"

	"github.com/miekg/dns"
)

// rcodeCounts counts the answers a resolver sent, by response code. It is
// an array of atomics so that the UDP fast path counts with one atomic add
// and no allocation; Stats turns it into names.
type rcodeCounts [maxCountedRcode + 1]atomic.Uint64

// maxCountedRcode is the largest response code counted: BADCOOKIE (23),
// the highest one an EDNS0 answer can carry in practice. The resolver
// itself answers NOERROR, FORMERR, NXDOMAIN, NOTIMP, REFUSED and BADVERS,
// and when it forwards (egress) SERVFAIL or whatever the upstream answered.
const maxCountedRcode = dns.RcodeBadCookie

// add counts one answer with rcode.
func (c *rcodeCounts) add(rcode int) {
	if rcode >= 0 && rcode < len(c) {
		c[rcode].Add(1)
	}
}

// answered counts one answer with rcode and tells the resolver's
// OnAnswer.
func (r *Resolver) answered(rcode int) {
	r.answers.add(rcode)
	if r.opts.OnAnswer != nil {
		r.opts.OnAnswer()
	}
}

// snapshot returns the counts by rcode name ("NOERROR", "NXDOMAIN", ...),
// leaving out codes never sent; nil if nothing was sent yet.
func (c *rcodeCounts) snapshot() map[string]uint64 {
	var out map[string]uint64
	for code := range c {
		n := c[code].Load()
		if n == 0 {
			continue
		}
		if out == nil {
			out = map[string]uint64{}
		}
		out[rcodeName(code)] = n
	}
	return out
}

// rcodeName is the mnemonic of code (dns.RcodeToString), or "RCODE<n>"
// for a code without one. 16 is BADVERS: miekg/dns names it BADSIG (the
// same number, TSIG's meaning), but the resolver signs nothing and sends
// 16 only for an EDNS0 version it does not know.
func rcodeName(code int) string {
	if code == dns.RcodeBadVers {
		return "BADVERS"
	}
	if s, ok := dns.RcodeToString[code]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(code)
}
