package dnsresolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Forwarding: a network with a way out (egress) has names outside its zone
// resolved by the node's upstream resolvers. The queries leave from one UDP
// socket the caller opened where the node's own traffic goes (the underlay),
// never from the network's namespace; answers are cached within their TTL.

// ErrNoAnswer is returned by Forwarder.Exchange when no upstream answered
// in time.
var ErrNoAnswer = errors.New("no upstream answered")

const (
	// upstreamTimeout is how long one upstream gets before the next is asked.
	upstreamTimeout = 1500 * time.Millisecond
	// maxCacheTTL caps how long an answer is kept, whatever its TTL.
	maxCacheTTL = time.Hour
	// negativeTTL is how long an answer without any TTL (no records, no
	// SOA) is kept.
	negativeTTL = 5 * time.Second
	// DefaultCacheSize is how many answers a Forwarder keeps by default.
	DefaultCacheSize = 4096
)

// Forwarder sends queries to upstream resolvers over one UDP socket and
// caches their answers. It is safe for concurrent use; Close stops it.
type Forwarder struct {
	conn *net.UDPConn
	log  *slog.Logger
	size int
	done chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	pending map[uint16]*pendingQuery // by message id
	cache   map[cacheKey]cacheEntry
	closed  bool
}

// pendingQuery is a query waiting for its answer from upstream.
type pendingQuery struct {
	upstream netip.AddrPort
	q        dns.Question
	answer   chan *dns.Msg // buffered, 1
}

type cacheKey struct {
	name  string // lower case
	qtype uint16
}

type cacheEntry struct {
	msg     *dns.Msg
	stored  time.Time
	expires time.Time
}

// NewForwarder returns a Forwarder sending from conn (which it owns and
// closes) and keeping at most size answers (0 means DefaultCacheSize).
func NewForwarder(conn *net.UDPConn, log *slog.Logger, size int) *Forwarder {
	if size <= 0 {
		size = DefaultCacheSize
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{
		conn: conn, log: log, size: size, done: make(chan struct{}),
		pending: map[uint16]*pendingQuery{}, cache: map[cacheKey]cacheEntry{},
	}
	f.wg.Add(1)
	go f.read()
	return f
}

// Close stops the Forwarder and closes its socket; safe twice.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	close(f.done)
	f.mu.Unlock()
	err := f.conn.Close()
	f.wg.Wait()
	return err
}

// read hands every answer to the query waiting for it: same id, from the
// upstream it was sent to, for the same question. Anything else is dropped.
func (f *Forwarder) read() {
	defer f.wg.Done()
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, from, err := f.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		m := new(dns.Msg)
		if m.Unpack(buf[:n]) != nil || !m.Response || len(m.Question) != 1 {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		f.mu.Lock()
		p := f.pending[m.Id]
		if p != nil && p.upstream == from && sameQuestion(p.q, m.Question[0]) {
			delete(f.pending, m.Id)
			p.answer <- m
		}
		f.mu.Unlock()
	}
}

func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// Exchange answers q (class IN) from the cache or from the first of
// upstreams that answers, each tried in turn. The answer is a fresh
// message the caller may change; its id is the upstream query's.
func (f *Forwarder) Exchange(ctx context.Context, q dns.Question, upstreams []netip.AddrPort) (*dns.Msg, error) {
	key := cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype}
	if m, ok := f.cached(key, time.Now()); ok {
		return m, nil
	}
	for _, u := range upstreams {
		m, err := f.ask(ctx, q, u)
		if err == nil {
			f.store(key, m, time.Now())
			return m.Copy(), nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		f.log.Debug("upstream did not answer", "upstream", u, "name", q.Name, "err", err)
	}
	return nil, fmt.Errorf("%s: %w", q.Name, ErrNoAnswer)
}

// ask sends q to upstream u and waits for its answer.
func (f *Forwarder) ask(ctx context.Context, q dns.Question, u netip.AddrPort) (*dns.Msg, error) {
	req := new(dns.Msg)
	req.SetQuestion(q.Name, q.Qtype)
	req.RecursionDesired = true
	req.SetEdns0(ednsSize, false)
	p := &pendingQuery{upstream: u, q: q, answer: make(chan *dns.Msg, 1)}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, net.ErrClosed
	}
	for {
		req.Id = uint16(rand.UintN(1 << 16)) // unpredictable, against spoofed answers
		if f.pending[req.Id] == nil {
			break
		}
	}
	f.pending[req.Id] = p
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		if f.pending[req.Id] == p {
			delete(f.pending, req.Id)
		}
		f.mu.Unlock()
	}()
	wire, err := req.Pack()
	if err != nil {
		return nil, err
	}
	if _, err := f.conn.WriteToUDPAddrPort(wire, u); err != nil {
		return nil, err
	}
	timer := time.NewTimer(upstreamTimeout)
	defer timer.Stop()
	select {
	case m := <-p.answer:
		return m, nil
	case <-timer.C:
		return nil, ErrNoAnswer
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.done:
		return nil, net.ErrClosed
	}
}

// cached returns a copy of the answer kept for key with its TTLs lowered by
// the time it was kept, if it has not expired.
func (f *Forwarder) cached(key cacheKey, now time.Time) (*dns.Msg, bool) {
	f.mu.Lock()
	e, ok := f.cache[key]
	if ok && !now.Before(e.expires) {
		delete(f.cache, key)
		ok = false
	}
	f.mu.Unlock()
	if !ok {
		return nil, false
	}
	m := e.msg.Copy()
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range rrs {
			if h := rr.Header(); h.Rrtype != dns.TypeOPT {
				h.Ttl -= min(age, h.Ttl)
			}
		}
	}
	return m, true
}

// store keeps m for key for its TTL (truncated and failed answers are not
// kept). A full cache first drops what expired, then an arbitrary entry.
func (f *Forwarder) store(key cacheKey, m *dns.Msg, now time.Time) {
	if m.Truncated || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
		return
	}
	ttl := answerTTL(m)
	if ttl <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.cache) >= f.size {
		for k, e := range f.cache {
			if !now.Before(e.expires) {
				delete(f.cache, k)
			}
		}
		for k := range f.cache {
			if len(f.cache) < f.size {
				break
			}
			delete(f.cache, k)
		}
	}
	f.cache[key] = cacheEntry{msg: m, stored: now, expires: now.Add(ttl)}
}

// answerTTL is how long m may be kept: its smallest TTL (for a negative
// answer, the SOA's negative TTL, RFC 2308), at most maxCacheTTL.
func answerTTL(m *dns.Msg) time.Duration {
	ttl, seen := uint32(maxCacheTTL/time.Second), false
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range rrs {
			h := rr.Header()
			t := h.Ttl
			if soa, ok := rr.(*dns.SOA); ok && len(m.Answer) == 0 {
				t = min(t, soa.Minttl)
			}
			ttl, seen = min(ttl, t), true
		}
	}
	if !seen {
		return negativeTTL
	}
	return time.Duration(ttl) * time.Second
}

// forwardTimeout bounds the whole forwarding of one query.
const forwardTimeout = 4 * time.Second

// forwards reports whether req goes to the upstreams: a plain query of
// class IN for a name the resolver is not authoritative for (neither in
// the zone nor the reverse of a network range), when it has a forwarder
// and the config upstreams.
func (r *Resolver) forwards(v *view, req *dns.Msg) bool {
	if r.opts.Forwarder == nil || len(v.cfg.Upstreams) == 0 || len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		return false
	}
	q := req.Question[0]
	if q.Qclass != dns.ClassINET || isTransfer(q.Qtype) || q.Qtype == dns.TypeANY {
		return false
	}
	labels, ok := splitName(q.Name)
	if !ok {
		return false
	}
	if _, ok := v.relative(labels); ok {
		return false
	}
	if p, _, ok := parseReverse(labels); ok {
		if _, ok := v.reverseRange(p); ok {
			return false
		}
	}
	return true
}

// serveForwarded answers req with the upstreams' answer (SERVFAIL when none
// answers), cut to the client's size limit.
func (r *Resolver) serveForwarded(w dns.ResponseWriter, v *view, req *dns.Msg, tcp bool) {
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	up, err := r.opts.Forwarder.Exchange(ctx, req.Question[0], v.cfg.Upstreams)
	if err != nil {
		r.log.Debug("forwarding", "name", req.Question[0].Name, "err", err)
		resp.Rcode = dns.RcodeServerFailure
	} else {
		resp.Rcode = up.Rcode
		resp.Answer, resp.Ns = up.Answer, up.Ns
		for _, rr := range up.Extra {
			if rr.Header().Rrtype != dns.TypeOPT {
				resp.Extra = append(resp.Extra, rr)
			}
		}
	}
	fit(resp, req, tcp)
	r.answered(resp.Rcode)
	if err := w.WriteMsg(resp); err != nil {
		r.log.Debug("writing answer", "to", w.RemoteAddr(), "err", err)
	}
}
