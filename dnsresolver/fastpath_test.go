package dnsresolver

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/internal/testutil/nstest"
	"github.com/znet/znet/namespaces"
)

// rawWriter is a dns.ResponseWriter over UDP that keeps the packed bytes
// of what the handler writes.
type rawWriter struct {
	recorder
	out [][]byte
}

func (w *rawWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	w.out = append(w.out, b)
	return nil
}

// slowAnswer is what the dns.Server and ServeDNS answer to pkt from src
// over UDP: nil for a message the fast path must leave alone anyway (one
// that does not unpack, which the server answers with FORMERR itself).
func slowAnswer(t testing.TB, r *Resolver, pkt []byte, src netip.Addr) []byte {
	t.Helper()
	req := new(dns.Msg)
	if req.Unpack(pkt) != nil {
		return nil
	}
	w := &rawWriter{recorder: *newRecorder(false, src)}
	r.ServeDNS(w, req)
	require.LessOrEqual(t, len(w.out), 1)
	if len(w.out) == 0 {
		return nil
	}
	return w.out[0]
}

// flipCase returns pkt with the case of the letters of its question's
// name swapped, and another id, RD and CD.
func flipCase(pkt []byte) []byte {
	out := bytes.Clone(pkt)
	if len(out) < headerLen {
		return out
	}
	out[0] ^= 0x5a
	out[2] ^= 0x01
	out[3] ^= 0x10
	for i := headerLen; i < len(out) && out[i] != 0; i += 1 + int(out[i]) {
		for j := i + 1; j <= i+int(out[i]) && j < len(out); j++ {
			if c := out[j] | 0x20; c >= 'a' && c <= 'z' {
				out[j] ^= 0x20
			}
		}
	}
	return out
}

func TestUDPCacheAnswersLikeServeDNS(t *testing.T) {
	cfg, held := manyConfig(40)
	cfg.Local = testConfig().Local
	cfg.Members = append(cfg.Members, testConfig().Members[0])
	held["n2"] = testHeld()["n2"]
	r := newTestResolver(t, cfg, held)
	edns := func(size uint16, do bool) func(*dns.Msg) {
		return func(m *dns.Msg) { m.SetEdns0(size, do) }
	}
	tests := []struct {
		name  string
		qname string
		qtype uint16
		edit  func(*dns.Msg)
		fast  bool // answered by the fast path
	}{
		{"A", "web.shop.internal.", dns.TypeA, nil, true},
		{"mixed case", "WeB.ShOp.InTeRnAl.", dns.TypeAAAA, nil, true},
		{"ANY", "api.shop.internal.", dns.TypeANY, nil, true},
		{"NODATA", "db.shop.internal.", dns.TypeAAAA, nil, true},
		{"NXDOMAIN", "nope.shop.internal.", dns.TypeA, nil, true},
		{"REFUSED outside", "example.com.", dns.TypeA, nil, true},
		{"AXFR over UDP", "shop.internal.", dns.TypeAXFR, nil, true},
		{"apex SOA", "SHOP.internal.", dns.TypeSOA, nil, true},
		{"apex ANY", "Shop.Internal.", dns.TypeANY, nil, true},
		{"apex A", "shop.INTERNAL.", dns.TypeA, nil, true},
		{"node", "N2.node.shop.internal.", dns.TypeA, nil, true},
		{"PTR", "5.1.20.10.IN-ADDR.arpa.", dns.TypePTR, nil, true},
		{"reverse NXDOMAIN", "99.1.20.10.in-addr.arpa.", dns.TypePTR, nil, true},
		{"EDNS0", "web.shop.internal.", dns.TypeA, edns(1232, false), true},
		{"EDNS0 DO", "web.shop.internal.", dns.TypeA, edns(4096, true), true},
		{"EDNS0 small size", "web.shop.internal.", dns.TypeA, edns(100, false), true},
		{"large answer fits EDNS0", "many.shop.internal.", dns.TypeA, edns(4096, false), true},
		{"truncated", "many.shop.internal.", dns.TypeANY, nil, false},
		{"class CH", "web.shop.internal.", dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }, false},
		{"transfer zone", "n1._local.shop.internal.", dns.TypeSOA, nil, false},
		{"NOTIFY", "n2._local.shop.internal.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }, false},
		{"EDNS0 version 1", "web.shop.internal.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }, false},
		{"EDNS0 option", "web.shop.internal.", dns.TypeA, func(m *dns.Msg) {
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
		}, false},
		{"two questions", "web.shop.internal.", dns.TypeA, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }, false},
		{"a response", "web.shop.internal.", dns.TypeA, func(m *dns.Msg) { m.Response = true }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newUDPCache(r)
			m := new(dns.Msg)
			m.SetQuestion(tt.qname, tt.qtype)
			if tt.edit != nil {
				tt.edit(m)
			}
			pkt, err := m.Pack()
			require.NoError(t, err)
			for i, p := range [][]byte{pkt, flipCase(pkt), pkt} { // a miss, then hits
				got, ok := c.answer(p, workloadSrc)
				require.Equal(t, tt.fast, ok, "query %d", i)
				if ok {
					want := slowAnswer(t, r, p, workloadSrc)
					require.NotNil(t, want)
					assert.Equal(t, want, got, "query %d", i)
				}
			}
		})
	}
}

func TestUDPCacheFollowsTheView(t *testing.T) {
	r := newTestResolver(t, testConfig(), testHeld())
	c := newUDPCache(r)
	m := new(dns.Msg)
	m.SetQuestion("db.shop.internal.", dns.TypeA)
	pkt, err := m.Pack()
	require.NoError(t, err)
	rcodeOf := func() int {
		b, ok := c.answer(pkt, workloadSrc)
		require.True(t, ok)
		a := new(dns.Msg)
		require.NoError(t, a.Unpack(b))
		return a.Rcode
	}
	require.Equal(t, dns.RcodeSuccess, rcodeOf())
	require.Equal(t, dns.RcodeSuccess, rcodeOf()) // from the cache

	r.mu.Lock()
	r.cfg.Local = slices.DeleteFunc(slices.Clone(r.cfg.Local), func(rec Record) bool { return rec.Name == "db" })
	r.publishLocked()
	r.mu.Unlock()
	assert.Equal(t, dns.RcodeNameError, rcodeOf())
}

func TestUDPCacheIsBounded(t *testing.T) {
	r := newTestResolver(t, testConfig(), testHeld())
	c := newUDPCache(r)
	for i := range maxCached + 10 {
		m := new(dns.Msg)
		m.SetQuestion(net.IPv4(10, 20, byte(i>>8), byte(i)).String()+".example.", dns.TypeA)
		pkt, err := m.Pack()
		require.NoError(t, err)
		_, ok := c.answer(pkt, workloadSrc)
		require.True(t, ok)
		require.LessOrEqual(t, len(c.entries), maxCached)
	}
}

// FuzzUDPFastPath hands random messages to the UDP fast path. Invariant:
// whatever it answers, it answers with exactly the bytes the server and
// ServeDNS would, on a miss and on a hit, whatever the name's case.
func FuzzUDPFastPath(f *testing.F) {
	seed := func(name string, qtype uint16, edit func(m *dns.Msg)) {
		f.Add(packQuery(f, name, qtype, edit), false)
	}
	seed("web.shop.internal.", dns.TypeA, nil)
	seed("WEB.shop.internal.", dns.TypeAAAA, func(m *dns.Msg) { m.SetEdns0(1232, true) })
	seed("many.shop.internal.", dns.TypeANY, func(m *dns.Msg) { m.SetEdns0(4096, false) })
	seed("shop.internal.", dns.TypeANY, nil)
	seed("5.1.20.10.in-addr.arpa.", dns.TypePTR, nil)
	seed("n1._local.shop.internal.", dns.TypeSOA, nil)
	seed("example.com.", dns.TypeA, nil)
	seed(`a\000\.b.shop.internal.`, dns.TypeA, nil) // odd bytes in a label
	// An opcode the server does not implement: NOTIMP.
	seed("web.shop.internal.", dns.TypeA, func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate })

	cfg, held := manyConfig(40)
	cfg.Local = testConfig().Local
	cfg.Members = append(cfg.Members, testConfig().Members[0])
	held["n2"] = testHeld()["n2"]
	r := newTestResolver(f, cfg, held)
	c := newUDPCache(r)

	f.Fuzz(func(t *testing.T, b []byte, fromMember bool) {
		src := workloadSrc
		if fromMember {
			src = memberSrc
		}
		for _, p := range [][]byte{b, flipCase(b), b} {
			got, ok := c.answer(p, src)
			if !ok {
				continue
			}
			want := slowAnswer(t, r, p, src)
			require.NotNil(t, want, "the fast path answered a message the server would not")
			require.Equal(t, want, got)
		}
	})
}

// TestSlowUDPIsBounded checks that the UDP messages the fast path leaves to
// the server are handed over only while a place is free: a flood of them
// is dropped instead of growing goroutines and copies, and a place comes
// back when the server answers or ServeDNS returns.
func TestSlowUDPIsBounded(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	h := nstest.CreateNS(t, "zt-udp-"+testutil.RandomHex(t, 4))
	var server, client *net.UDPConn
	require.NoError(t, namespaces.Do(h, func() error {
		lh, err := netlink.NewHandleAt(h)
		if err != nil {
			return err
		}
		defer lh.Close()
		lo, err := lh.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := lh.LinkSetUp(lo); err != nil {
			return err
		}
		if server, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			return err
		}
		client, err = net.DialUDP("udp", nil, server.LocalAddr().(*net.UDPAddr))
		return err
	}))
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })

	c := newFastConn(newTestResolver(t, testConfig(), testHeld()), server)
	c.slow = make(chan struct{}, 2)
	// Class CHAOS: not for the fast path.
	slowPkt := packQuery(t, "web.shop.internal.", dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS })
	plainPkt := packQuery(t, "web.shop.internal.", dns.TypeA, nil)
	send := func(pkts ...[]byte) {
		for _, p := range pkts {
			_, err := client.Write(p)
			require.NoError(t, err)
		}
	}
	read := func() (*slowAddr, error) {
		require.NoError(t, server.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
		_, from, err := c.read()
		if err != nil {
			return nil, err
		}
		return from.(*slowAddr), nil
	}

	send(slowPkt, slowPkt, slowPkt, slowPkt, plainPkt)
	first, err := read()
	require.NoError(t, err)
	second, err := read()
	require.NoError(t, err)
	_, err = read()
	require.True(t, isTimeout(err), "the others are dropped: %v", err)
	// The plain query was answered all the same.
	require.NoError(t, client.SetReadDeadline(time.Now().Add(time.Second)))
	var b [512]byte
	n, err := client.Read(b[:])
	require.NoError(t, err)
	resp := new(dns.Msg)
	require.NoError(t, resp.Unpack(b[:n]))
	assert.Len(t, resp.Answer, 2, "web on n1 and n2")

	// An answer gives a place back, once; so does ServeDNS.
	_, err = c.WriteTo([]byte{0}, first)
	require.NoError(t, err)
	first.done()
	assert.Len(t, c.slow, 1)
	w := &rawWriter{recorder: *newRecorder(false, workloadSrc)}
	w.remote = second
	q := new(dns.Msg)
	require.NoError(t, q.Unpack(slowPkt))
	c.cache.r.ServeDNS(w, q)
	assert.Empty(t, c.slow)
	send(slowPkt)
	third, err := read()
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", addrOf(third).String())
}
