package dnsresolver

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// The UDP fast path. Nearly every query a resolver gets is a plain one (a
// workload asking for a name's A or AAAA record), and its answer depends
// only on the view, the lower-cased name, the type, and the EDNS0 size. So
// the goroutine that reads a UDP socket answers such a query itself, from
// answers it packed before for the same view, after patching the message
// id, the RD and CD bits, and the name's case; it neither starts a
// goroutine nor unpacks or packs a message. Every other message (TCP,
// NOTIFY, EDNS0 options, the transfer zone, anything odd) goes to the
// dns.Server and ServeDNS as before, and a miss is answered by the same
// code ServeDNS runs, so that both paths give the same bytes.

// maxCached caps the answers one socket keeps for a view; when full it
// starts afresh, so that queries for random names cost memory only up to
// that.
const maxCached = 8192

// cached is a packed answer and where the query's name must be copied in:
// the question and the owner names of the answer section.
type cached struct {
	msg    []byte
	owners []int // offsets of the owner names equal to the query's name
}

// udpCache answers plain UDP queries from packed answers. It is owned by
// the one goroutine that reads its socket.
type udpCache struct {
	r       *Resolver
	view    *view // the view entries were made from
	entries map[string]cached
	key     []byte // scratch: the key of the query at hand
	out     []byte // scratch: the answer at hand
}

// newUDPCache returns an empty cache for r.
func newUDPCache(r *Resolver) *udpCache {
	return &udpCache{r: r, entries: map[string]cached{}}
}

// query is what the fast path reads from a plain query.
type query struct {
	nameEnd int    // the name is pkt[headerLen:nameEnd]
	qtype   uint16 // the question's type
	opt     bool   // with an OPT record
	limit   uint16 // the answer's size limit over UDP
}

// headerLen is the length of a DNS message header.
const headerLen = 12

// parseQuery reads pkt if it is a plain query: not a response, opcode
// QUERY, one question of class IN with an uncompressed name, no other
// records than at most one OPT record of version 0 without options, and
// nothing after them. ok is false for anything else.
func parseQuery(pkt []byte) (q query, ok bool) {
	if len(pkt) < headerLen || pkt[2]&0xf8 != 0 { // QR, opcode
		return q, false
	}
	qd, an, ns, ar := be16(pkt[4:]), be16(pkt[6:]), be16(pkt[8:]), be16(pkt[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return q, false
	}
	off := headerLen
	for {
		if off >= len(pkt) {
			return q, false
		}
		l := int(pkt[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 { // a pointer or an extended label type
			return q, false
		}
		off += 1 + l
	}
	if off-headerLen > 255 || off+4 > len(pkt) || be16(pkt[off+2:]) != dns.ClassINET {
		return q, false
	}
	q.nameEnd, q.qtype, q.limit = off, be16(pkt[off:]), dns.MinMsgSize
	off += 4
	if ar == 1 {
		// An OPT record: root owner, type, size, TTL (extended rcode,
		// version, flags), no data.
		if len(pkt)-off != 11 || pkt[off] != 0 || be16(pkt[off+1:]) != dns.TypeOPT ||
			be16(pkt[off+5:]) != 0 || be16(pkt[off+9:]) != 0 {
			return q, false
		}
		q.opt, q.limit = true, min(max(be16(pkt[off+3:]), dns.MinMsgSize), maxUDPSize)
		off += 11
	}
	if off != len(pkt) {
		return q, false
	}
	return q, true
}

// answer returns the answer to pkt from src over UDP, if pkt is a plain
// query (parseQuery) whose answer does not depend on src; the bytes are
// valid until the next call.
func (c *udpCache) answer(pkt []byte, src netip.Addr) ([]byte, bool) {
	q, ok := parseQuery(pkt)
	if !ok {
		return nil, false
	}
	if v := c.r.view.Load(); v != c.view {
		c.view = v
		clear(c.entries)
	}
	name := pkt[headerLen:q.nameEnd]
	c.key = append(c.key[:0], name...)
	for i, b := range c.key {
		if b >= 'A' && b <= 'Z' {
			c.key[i] = b + 'a' - 'A'
		}
	}
	c.key = append(c.key, byte(q.qtype>>8), byte(q.qtype), byte(q.limit>>8), byte(q.limit))
	if q.opt {
		c.key = append(c.key, 1)
	}
	e, ok := c.entries[string(c.key)]
	if !ok {
		if e, ok = c.fill(pkt, name, src); !ok {
			return nil, false
		}
		if len(c.entries) >= maxCached {
			clear(c.entries)
		}
		c.entries[string(c.key)] = e
	}
	out := append(c.out[:0], e.msg...)
	out[0], out[1] = pkt[0], pkt[1]     // id
	out[2] = out[2]&^0x01 | pkt[2]&0x01 // RD
	out[3] = out[3]&^0x10 | pkt[3]&0x10 // CD
	copy(out[headerLen:], name)         // the question's case
	for _, o := range e.owners {
		copy(out[o:], name)
	}
	c.out = out
	// The fast path never answers BADVERS (parseQuery wants version 0), so
	// the header's four bits are the whole rcode.
	c.r.answered(int(out[3] & 0x0f))
	return out, true
}

// fill answers pkt the way ServeDNS does and returns the answer for the
// cache; ok is false if the answer depends on src (the transfer zone), or
// is compressed (truncated), or pkt does not unpack. name is the
// question's name in pkt, in wire format.
func (c *udpCache) fill(pkt, name []byte, src netip.Addr) (cached, bool) {
	req := new(dns.Msg)
	if req.Unpack(pkt) != nil {
		return cached{}, false
	}
	labels, ok := splitName(req.Question[0].Name)
	if !ok {
		return cached{}, false
	}
	if rel, ok := c.view.relative(labels); ok && len(rel) > 0 && rel[len(rel)-1] == localLabel {
		return cached{}, false
	}
	if c.r.forwards(c.view, req) {
		return cached{}, false // upstream's answer, with its own TTLs
	}
	resp, xfr := c.r.answer(c.view, req, src, false)
	if xfr {
		return cached{}, false
	}
	fit(resp, req, false)
	if resp.Compress {
		return cached{}, false
	}
	msg, err := resp.Pack()
	if err != nil {
		return cached{}, false
	}
	owners, ok := answerOwners(msg, name)
	if !ok {
		return cached{}, false
	}
	return cached{msg: msg, owners: owners}, true
}

// answerOwners returns the offsets in msg (packed without compression) of
// the owner names of the answer section that equal name, the question's
// name in wire format. ok is false if msg does not read as expected.
func answerOwners(msg, name []byte) (owners []int, ok bool) {
	off := headerLen + len(name) + 4
	if len(msg) < off || !bytes.Equal(msg[headerLen:headerLen+len(name)], name) {
		return nil, false
	}
	for range be16(msg[6:]) {
		start := off
		for {
			if off >= len(msg) || msg[off] > 63 {
				return nil, false
			}
			if msg[off] == 0 {
				off++
				break
			}
			off += 1 + int(msg[off])
		}
		if bytes.Equal(msg[start:off], name) {
			owners = append(owners, start)
		}
		if off+10 > len(msg) {
			return nil, false
		}
		off += 10 + int(be16(msg[off+8:]))
	}
	return owners, off <= len(msg)
}

// be16 reads a big-endian uint16.
func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

// maxSlowUDP caps the UDP messages of one socket that the dns.Server
// handles at once: it starts a goroutine and copies the message for each,
// so without a cap a flood of messages the fast path leaves alone would
// grow the data plane's memory for as long as it lasts. Beyond the cap
// such messages are dropped (the client retries); plain queries are still
// answered by the fast path.
const maxSlowUDP = 256

// fastConn is a resolver's UDP socket as its dns.Server sees it: not a
// *net.UDPConn, so that the server reads it through fastReader (and
// answers to the source address, which the bound socket needs no control
// messages for).
type fastConn struct {
	*net.UDPConn
	cache *udpCache
	buf   []byte
	slow  chan struct{} // a place for each message handed to the server
}

// newFastConn wraps pc, a UDP socket bound to one address, for r.
func newFastConn(r *Resolver, pc *net.UDPConn) *fastConn {
	return &fastConn{UDPConn: pc, cache: newUDPCache(r), buf: make([]byte, dns.DefaultMsgSize), slow: make(chan struct{}, maxSlowUDP)}
}

// read reads packets from c, answers those the fast path can, and returns
// the first other one (a copy) and its source as a *slowAddr holding one
// of c's places. It drops what the server would not answer (shorter than a
// header, or a response) and what comes while every place is taken. A
// read error ends it; the server's Shutdown ends reads with a deadline in
// the past.
func (c *fastConn) read() ([]byte, net.Addr, error) {
	for {
		n, from, err := c.ReadFromUDPAddrPort(c.buf)
		if err != nil {
			return nil, nil, err
		}
		pkt := c.buf[:n]
		if resp, ok := c.cache.answer(pkt, from.Addr().Unmap().WithZone("")); ok {
			if _, err := c.WriteToUDPAddrPort(resp, from); err != nil {
				c.cache.r.log.Debug("writing answer", "to", from.Addr(), "err", err)
			}
			continue
		}
		if n < headerLen || pkt[2]&0x80 != 0 { // QR: a response
			continue
		}
		select {
		case c.slow <- struct{}{}:
		default:
			continue
		}
		return bytes.Clone(pkt), &slowAddr{UDPAddr: net.UDPAddrFromAddrPort(from), slow: c.slow}, nil
	}
}

// WriteTo sends b to addr; a *slowAddr gives its place back.
func (c *fastConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if a, ok := addr.(*slowAddr); ok {
		defer a.done()
		addr = a.UDPAddr
	}
	return c.UDPConn.WriteTo(b, addr)
}

// slowAddr is the source of a message fastConn.read handed to the server:
// the server answers to it (fastConn.WriteTo) and ServeDNS sees it as the
// remote address, and either gives back the place the message holds. Every
// message read hands over leads to one of them: it unpacks and reaches
// ServeDNS, or it does not and the server answers FORMERR.
type slowAddr struct {
	*net.UDPAddr
	slow chan struct{}
	once sync.Once
}

// done gives the message's place back, the first time it is called.
func (a *slowAddr) done() { a.once.Do(func() { <-a.slow }) }

// fastReader is the dns.Reader of a UDP server whose PacketConn is a
// *fastConn; TCP goes to the server's own reader.
type fastReader struct{ dns.Reader }

var _ dns.PacketConnReader = fastReader{}

// ReadPacketConn reads the next message the fast path did not answer.
func (fr fastReader) ReadPacketConn(conn net.PacketConn, _ time.Duration) ([]byte, net.Addr, error) {
	return conn.(*fastConn).read()
}
