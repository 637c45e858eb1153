package dnsresolver

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// recorder is a dns.ResponseWriter that keeps what the handler writes, after
// a round trip through the wire format (so that an answer that cannot be
// packed is an error, and sizes are real).
type recorder struct {
	local, remote net.Addr
	msgs          []*dns.Msg
	sizes         []int
	err           error // the first packing error
}

var _ dns.ResponseWriter = (*recorder)(nil)

// newRecorder returns a recorder for a query from src over UDP or TCP to
// the gateway 10.20.1.1:53.
func newRecorder(tcp bool, src netip.Addr) *recorder {
	server := netip.AddrPortFrom(netip.MustParseAddr("10.20.1.1"), 53)
	client := netip.AddrPortFrom(src, 40000)
	if tcp {
		return &recorder{local: net.TCPAddrFromAddrPort(server), remote: net.TCPAddrFromAddrPort(client)}
	}
	return &recorder{local: net.UDPAddrFromAddrPort(server), remote: net.UDPAddrFromAddrPort(client)}
}

func (r *recorder) LocalAddr() net.Addr  { return r.local }
func (r *recorder) RemoteAddr() net.Addr { return r.remote }
func (r *recorder) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		if r.err == nil {
			r.err = err
		}
		return err
	}
	_, err = r.Write(b)
	return err
}
func (r *recorder) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		if r.err == nil {
			r.err = err
		}
		return 0, err
	}
	r.msgs = append(r.msgs, m)
	r.sizes = append(r.sizes, len(b))
	return len(b), nil
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}

// The test network: node n1 (this node), members n2 and n3.
var (
	workloadSrc = netip.MustParseAddr("10.20.1.5") // web on n1
	memberSrc   = netip.MustParseAddr("10.20.2.1") // n2's gateway
)

// testConfig is n1's config in the network shop.
func testConfig() Config {
	return Config{
		Network:   "shop",
		NodeID:    "n1",
		Gateway4:  netip.MustParseAddr("10.20.1.1"),
		Gateway6:  netip.MustParseAddr("fd3c:9a1e:77b2:1::1"),
		IPRange:   netip.MustParsePrefix("10.20.0.0/16"),
		IPv6Range: netip.MustParsePrefix("fd3c:9a1e:77b2::/48"),
		Members: []Member{
			{
				ID: "n2", Gateway4: netip.MustParseAddr("10.20.2.1"), Gateway6: netip.MustParseAddr("fd3c:9a1e:77b2:2::1"),
				Subnet4: netip.MustParsePrefix("10.20.2.0/24"), Subnet6: netip.MustParsePrefix("fd3c:9a1e:77b2:2::/64"),
			},
			{ID: "n3", Gateway4: netip.MustParseAddr("10.20.3.1"), Subnet4: netip.MustParsePrefix("10.20.3.0/24")},
		},
		Local: []Record{
			{Name: "web", IPv4: netip.MustParseAddr("10.20.1.5"), IPv6: netip.MustParseAddr("fd3c:9a1e:77b2:1::5")},
			{Name: "db", IPv4: netip.MustParseAddr("10.20.1.6")},
		},
	}
}

// testHeld is what n1 holds of its members.
func testHeld() map[string][]Record {
	return map[string][]Record{
		"n2": {
			{Name: "web", IPv4: netip.MustParseAddr("10.20.2.5")},
			{Name: "api", IPv4: netip.MustParseAddr("10.20.2.7"), IPv6: netip.MustParseAddr("fd3c:9a1e:77b2:2::7")},
		},
		"n3": {{Name: "cache", IPv4: netip.MustParseAddr("10.20.3.9")}},
	}
}

// newTestResolver returns a resolver for cfg that neither listens nor
// syncs, holding held for its members, as if transferred.
func newTestResolver(t testing.TB, cfg Config, held map[string][]Record) *Resolver {
	t.Helper()
	r, err := newResolver(cfg, nil, Options{})
	require.NoError(t, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.cfg.Members {
		mm := &member{Member: m, pull: make(chan struct{}, 1), push: make(chan struct{}, 1), records: map[string]addrs{}}
		for _, rec := range held[m.ID] {
			a := mm.records[rec.Name]
			a.add(rec.IPv4)
			a.add(rec.IPv6)
			mm.records[rec.Name] = a
		}
		mm.serial, mm.synced = 7, true
		r.members[m.ID] = mm
	}
	r.publishLocked()
	return r
}

// ask sends a query for name and qtype to r's handler from src and returns
// what was written.
func ask(t testing.TB, r *Resolver, name string, qtype uint16, tcp bool, src netip.Addr) *recorder {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	return send(t, r, q, tcp, src)
}

// send hands q to r's handler from src and returns what was written.
func send(t testing.TB, r *Resolver, q *dns.Msg, tcp bool, src netip.Addr) *recorder {
	t.Helper()
	rec := newRecorder(tcp, src)
	r.ServeDNS(rec, q)
	require.NoError(t, rec.err)
	return rec
}

// render shows records as "TYPE rdata" lines, sorted.
func render(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, dns.TypeToString[rr.Header().Rrtype]+" "+strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	slices.Sort(out)
	return out
}

// manyConfig is n1's config with n members (m001...), each holding the
// name "many" with an IPv4 and an IPv6 address.
func manyConfig(n int) (Config, map[string][]Record) {
	cfg := testConfig()
	cfg.Members = nil
	held := map[string][]Record{}
	for i := range n {
		id := fmt.Sprintf("m%03d", i)
		cfg.Members = append(cfg.Members, Member{
			ID:       id,
			Gateway4: netip.AddrFrom4([4]byte{10, 20, byte(10 + i), 1}),
		})
		held[id] = []Record{{
			Name: "many",
			IPv4: netip.AddrFrom4([4]byte{10, 20, byte(10 + i), 9}),
			IPv6: netip.MustParseAddr(fmt.Sprintf("fd3c:9a1e:77b2:%x::9", 10+i)),
		}}
	}
	return cfg, held
}

// wireName returns name as it reads after a trip through the wire format.
func wireName(t testing.TB, name string) string {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	b, err := q.Pack()
	require.NoError(t, err)
	require.NoError(t, q.Unpack(b))
	return q.Question[0].Name
}

// packQuery packs a query for name and qtype, changed by edit if not nil.
func packQuery(t testing.TB, name string, qtype uint16, edit func(m *dns.Msg)) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edit != nil {
		edit(m)
	}
	b, err := m.Pack()
	require.NoError(t, err)
	return b
}
