package dnsresolver

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServeDNSTruncation(t *testing.T) {
	cfg, held := manyConfig(150) // "many" has 150 IPv4 and 150 IPv6 addresses
	r := newTestResolver(t, cfg, held)
	tests := []struct {
		name      string
		qtype     uint16
		edns      uint16 // 0: no EDNS
		tcp       bool
		truncated bool
		limit     int // the answer's size limit
	}{
		{name: "UDP without EDNS", qtype: dns.TypeA, truncated: true, limit: 512},
		{name: "UDP with EDNS 1232", qtype: dns.TypeANY, edns: 1232, truncated: true, limit: 1232},
		{name: "UDP with EDNS below 512", qtype: dns.TypeA, edns: 100, truncated: true, limit: 512},
		{name: "UDP with EDNS 65000 is capped", qtype: dns.TypeANY, edns: 65000, truncated: true, limit: maxUDPSize},
		{name: "UDP with EDNS large enough", qtype: dns.TypeA, edns: 4096, limit: 4096},
		{name: "TCP", qtype: dns.TypeANY, tcp: true, limit: dns.MaxMsgSize},
		{name: "TCP with EDNS 512", qtype: dns.TypeANY, edns: 512, tcp: true, limit: dns.MaxMsgSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := new(dns.Msg)
			q.SetQuestion("many.shop.internal.", tt.qtype)
			if tt.edns != 0 {
				q.SetEdns0(tt.edns, false)
			}
			rec := send(t, r, q, tt.tcp, workloadSrc)
			require.Len(t, rec.msgs, 1)
			m := rec.msgs[0]
			assert.LessOrEqual(t, rec.sizes[0], tt.limit)
			assert.Equal(t, tt.truncated, m.Truncated, "TC")
			assert.Equal(t, dns.RcodeSuccess, m.Rcode)
			want := 150
			if tt.qtype == dns.TypeANY {
				want = 300
			}
			if tt.truncated {
				assert.Less(t, len(m.Answer), want)
			} else {
				assert.Len(t, m.Answer, want)
			}
			assert.Equal(t, tt.edns != 0, m.IsEdns0() != nil, "OPT kept")
		})
	}
}

func TestTransferRoundTrip(t *testing.T) {
	cfg := testConfig()
	cfg.Local = nil
	for i := range 300 { // more than one message
		cfg.Local = append(cfg.Local, Record{
			Name: fmt.Sprintf("w%03d", i),
			IPv4: netip.AddrFrom4([4]byte{10, 20, 1, byte(i % 250)}),
			IPv6: netip.MustParseAddr(fmt.Sprintf("fd3c:9a1e:77b2:1::%x", i)),
		})
	}
	cfg.Local = append(cfg.Local, Record{Name: "only6", IPv6: netip.MustParseAddr("fd3c:9a1e:77b2:1::ffff")})
	r := newTestResolver(t, cfg, nil)

	rec := ask(t, r, "n1._local.shop.internal.", dns.TypeAXFR, true, memberSrc)
	require.Greater(t, len(rec.msgs), 1)
	// n2 reads it with its own config of the same network.
	tr := newTransferReader(cfg, Member{ID: "n1"})
	for _, m := range rec.msgs {
		require.Equal(t, dns.RcodeSuccess, m.Rcode)
		require.True(t, m.Authoritative)
		require.NoError(t, tr.add(m.Answer))
	}
	require.True(t, tr.done)
	assert.Equal(t, r.view.Load().localSerial, tr.serial)
	require.Len(t, tr.records, len(cfg.Local))
	for _, want := range cfg.Local {
		var a addrs
		a.add(want.IPv4)
		a.add(want.IPv6)
		assert.Equal(t, a, tr.records[want.Name], want.Name)
	}
}

func TestTransferReader(t *testing.T) {
	const zone = "n2._local.shop.internal."
	soa := func(serial uint32) dns.RR {
		return &dns.SOA{Hdr: header(zone, dns.TypeSOA), Ns: "n2.node.shop.internal.", Mbox: "h.shop.internal.", Serial: serial}
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		require.NoError(t, err)
		return r
	}
	tests := []struct {
		name    string
		msgs    [][]dns.RR
		err     bool
		done    bool
		records map[string]string // name -> rendered addresses
		foreign int               // addresses skipped as not the member's
	}{
		{
			name: "one message",
			msgs: [][]dns.RR{{soa(5), rr("api.n2._local.shop.internal. 1 IN A 10.20.2.7"), soa(5)}},
			done: true, records: map[string]string{"api": "[10.20.2.7] []"},
		},
		{
			name: "over several messages, names in any case",
			msgs: [][]dns.RR{{soa(5)}, {rr("API.n2._local.SHOP.internal. 1 IN A 10.20.2.7")}, {}, {rr("api.n2._local.shop.internal. 1 IN AAAA fd3c:9a1e:77b2:2::7"), soa(5)}},
			done: true, records: map[string]string{"api": "[10.20.2.7] [fd3c:9a1e:77b2:2::7]"},
		},
		{
			name: "foreign names, types, classes and addresses are skipped",
			msgs: [][]dns.RR{{
				soa(5),
				rr("web.n3._local.shop.internal. 1 IN A 10.20.2.7"),
				rr("a.b.n2._local.shop.internal. 1 IN A 10.20.2.7"),
				rr("bad_name.n2._local.shop.internal. 1 IN A 10.20.2.7"),
				rr("txt.n2._local.shop.internal. 1 IN TXT hello"),
				rr("chaos.n2._local.shop.internal. 1 CH A 10.20.2.7"),
				rr("out.n2._local.shop.internal. 1 IN A 192.0.2.1"),
				rr("out6.n2._local.shop.internal. 1 IN AAAA 2001:db8::1"),
				rr("mapped.n2._local.shop.internal. 1 IN AAAA ::ffff:10.20.2.9"),
				soa(5),
			}},
			done: true, records: map[string]string{}, foreign: 2,
		},
		{
			name: "addresses outside the member's subnets are skipped",
			msgs: [][]dns.RR{{
				soa(5),
				rr("api.n2._local.shop.internal. 1 IN A 10.20.2.7"),
				rr("api.n2._local.shop.internal. 1 IN AAAA fd3c:9a1e:77b2:3::7"),
				rr("w1.n2._local.shop.internal. 1 IN A 10.20.3.9"),
				rr("w1.n2._local.shop.internal. 1 IN AAAA fd3c:9a1e:77b2:1::5"),
				soa(5),
			}},
			done: true, records: map[string]string{"api": "[10.20.2.7] []"}, foreign: 3,
		},
		{name: "no SOA first", msgs: [][]dns.RR{{rr("api.n2._local.shop.internal. 1 IN A 10.20.2.7")}}, err: true},
		{name: "another zone's SOA first", msgs: [][]dns.RR{{&dns.SOA{Hdr: header("shop.internal.", dns.TypeSOA)}}}, err: true},
		{name: "serial changes", msgs: [][]dns.RR{{soa(5), soa(6)}}, err: true},
		{name: "records after the end", msgs: [][]dns.RR{{soa(5), soa(5), rr("api.n2._local.shop.internal. 1 IN A 10.20.2.7")}}, err: true},
		{name: "not finished", msgs: [][]dns.RR{{soa(5), rr("api.n2._local.shop.internal. 1 IN A 10.20.2.7")}},
			records: map[string]string{"api": "[10.20.2.7] []"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTransferReader(testConfig(), testConfig().Members[0])
			var err error
			for _, m := range tt.msgs {
				if err = tr.add(m); err != nil {
					break
				}
			}
			if tt.err {
				require.ErrorIs(t, err, errBadTransfer)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.done, tr.done)
			got := map[string]string{}
			for name, a := range tr.records {
				got[name] = fmt.Sprint(a.v4, " ", a.v6)
			}
			assert.Equal(t, tt.records, got)
			assert.Equal(t, tt.foreign, tr.foreign)
		})
	}
}

// TestTransferReaderBoundsAddresses checks that a member cannot make one
// name hold more than maxNameAddrs addresses.
func TestTransferReaderBoundsAddresses(t *testing.T) {
	zone := "n2._local.shop.internal."
	soa := &dns.SOA{Hdr: header(zone, dns.TypeSOA), Ns: "n2.node.shop.internal.", Mbox: "h.shop.internal.", Serial: 5}
	rrs := []dns.RR{soa}
	for i := range maxNameAddrs + 1 {
		rr, err := dns.NewRR(fmt.Sprintf("web.%s 1 IN AAAA fd3c:9a1e:77b2:2::%x", zone, i+1))
		require.NoError(t, err)
		rrs = append(rrs, rr)
	}
	tr := newTransferReader(testConfig(), testConfig().Members[0])
	require.ErrorIs(t, tr.add(rrs), errBadTransfer)
	tr = newTransferReader(testConfig(), testConfig().Members[0])
	require.NoError(t, tr.add(append(rrs[:maxNameAddrs+1], soa)))
	assert.Len(t, tr.records["web"].v6, maxNameAddrs)
}

// TestTransferReaderWithoutSubnets checks what a member without subnets (a
// Config from an older znetd) may publish: any address of the network.
func TestTransferReaderWithoutSubnets(t *testing.T) {
	zone := "n2._local.shop.internal."
	soa := &dns.SOA{Hdr: header(zone, dns.TypeSOA), Ns: "n2.node.shop.internal.", Mbox: "h.shop.internal.", Serial: 5}
	a, err := dns.NewRR("w1.n2._local.shop.internal. 1 IN A 10.20.3.9")
	require.NoError(t, err)
	m := testConfig().Members[0]
	m.Subnet4, m.Subnet6 = netip.Prefix{}, netip.Prefix{}
	tr := newTransferReader(testConfig(), m)
	require.NoError(t, tr.add([]dns.RR{soa, a, soa}))
	assert.Len(t, tr.records, 1)
}

func TestNotify(t *testing.T) {
	notify := func(zone string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetNotify(zone)
		m.Question[0].Qtype = qtype
		return m
	}
	n3 := netip.MustParseAddr("10.20.3.1")
	tests := []struct {
		name  string
		req   *dns.Msg
		src   netip.Addr
		rcode int
		woken string // member whose pull goroutine is woken
	}{
		{name: "from a member for its zone", req: notify("n2._local.shop.internal.", dns.TypeSOA), src: memberSrc, rcode: dns.RcodeSuccess, woken: "n2"},
		{name: "over IPv6", req: notify("N2._local.shop.internal.", dns.TypeSOA), src: netip.MustParseAddr("fd3c:9a1e:77b2:2::1"), rcode: dns.RcodeSuccess, woken: "n2"},
		{name: "from a member for another member's zone", req: notify("n3._local.shop.internal.", dns.TypeSOA), src: memberSrc, rcode: dns.RcodeRefused},
		{name: "from a member for the zone", req: notify("shop.internal.", dns.TypeSOA), src: n3, rcode: dns.RcodeRefused},
		{name: "from outside the network", req: notify("n2._local.shop.internal.", dns.TypeSOA), src: netip.MustParseAddr("198.51.100.7"), rcode: dns.RcodeRefused},
		{name: "from a workload", req: notify("n2._local.shop.internal.", dns.TypeSOA), src: workloadSrc, rcode: dns.RcodeRefused},
		{name: "not for a SOA", req: notify("n2._local.shop.internal.", dns.TypeA), src: memberSrc, rcode: dns.RcodeRefused},
		{name: "outside the zone", req: notify("example.com.", dns.TypeSOA), src: memberSrc, rcode: dns.RcodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestResolver(t, testConfig(), testHeld())
			rec := send(t, r, tt.req, false, tt.src)
			require.Len(t, rec.msgs, 1)
			m := rec.msgs[0]
			assert.Equal(t, dns.RcodeToString[tt.rcode], dns.RcodeToString[m.Rcode])
			assert.Equal(t, dns.OpcodeNotify, m.Opcode)
			for id, mm := range r.members {
				assert.Equal(t, id == tt.woken, len(mm.pull) == 1, "member %s woken", id)
			}
		})
	}
}
