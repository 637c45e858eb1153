package dnsresolver

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
)

// TestSyncKeepsOnlyMemberSubnets checks that a member cannot publish names
// for addresses outside its own subnets (another member's workloads): they
// are dropped on transfer, and its own names still answer.
func TestSyncKeepsOnlyMemberSubnets(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	evil := rec("evil", 2, 9) // node2's subnet, published by node1
	mixed := Record{Name: "mixed", IPv4: rec("", 1, 6).IPv4, IPv6: rec("", 2, 6).IPv6}
	n1.start(t, n1.config([]Member{n2.member()}, rec("web", 1, 5), evil, mixed))
	n2.start(t, n2.config([]Member{n1.member()}, rec("api", 2, 7)))

	n2.waitFor(t, firstSync, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")
	assert.Equal(t, []string{"NXDOMAIN"}, n2.lookup(t, "evil.shop.internal.", dns.TypeA))
	assert.Equal(t, []string{"NXDOMAIN"}, n2.lookup(t, "evil.shop.internal.", dns.TypeAAAA))
	assert.Equal(t, []string{"NXDOMAIN"}, n2.lookup(t, "9.2.20.10.in-addr.arpa.", dns.TypePTR))
	assert.Equal(t, []string{"A 10.20.1.6"}, n2.lookup(t, "mixed.shop.internal.", dns.TypeA))
	assert.Empty(t, n2.lookup(t, "mixed.shop.internal.", dns.TypeAAAA), "only the address node1 owns")
}

// fakeMember serves node1's transfer zone with one name, web ->
// 10.20.1.<host>, whose serial is host; it counts the transfers it serves.
type fakeMember struct {
	host      atomic.Uint32
	transfers atomic.Int32
	notifies  atomic.Int32
}

func (f *fakeMember) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	const zone = "node1._local.shop.internal."
	host := f.host.Load()
	soa := &dns.SOA{Hdr: header(zone, dns.TypeSOA), Ns: "node1.node.shop.internal.", Mbox: "h.shop.internal.", Serial: host}
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	switch {
	case len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery: // a NOTIFY: acknowledged
		f.notifies.Add(1)
	case req.Question[0].Qtype == dns.TypeAXFR:
		f.transfers.Add(1)
		web := &dns.A{Hdr: header("web."+zone, dns.TypeA), A: net.IPv4(10, 20, 1, byte(host))}
		resp.Answer = []dns.RR{soa, web, soa}
	case req.Question[0].Qtype == dns.TypeSOA:
		resp.Answer = []dns.RR{soa}
	}
	_ = w.WriteMsg(resp)
}

// serve runs f on n's gateway (UDP and TCP port 53) until the test ends.
func (f *fakeMember) serve(t *testing.T, n *testNode) {
	t.Helper()
	addr := net.JoinHostPort(n.gw4.String(), "53")
	var pc net.PacketConn
	var l net.Listener
	require.NoError(t, n.do(func() error {
		var err error
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			return err
		}
		l, err = net.Listen("tcp", addr)
		return err
	}))
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: f}, {Listener: l, Handler: f}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
}

// TestSyncNotifyFlood checks that a member sending NOTIFY after NOTIFY
// gets at most one transfer per transferGap, and that a change it made
// during the flood still arrives: the NOTIFYs coalesce into one later
// transfer.
func TestSyncNotifyFlood(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	f := &fakeMember{}
	f.host.Store(5)
	f.serve(t, n1)
	n2.start(t, n2.config([]Member{n1.member()}))

	notify := notifier(t, n1, n2)
	notify() // ends node2's quiet start
	n2.waitFor(t, second, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")

	before := f.transfers.Load()
	const flood = time.Second
	start := time.Now()
	sent := 0
	for time.Since(start) < flood {
		if sent == 250 {
			f.host.Store(6) // a change in the middle of the flood
		}
		notify()
		sent++
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	took := n2.waitFor(t, transferGap+second, "web.shop.internal.", dns.TypeA, "A 10.20.1.6")
	got := int(f.transfers.Load() - before)
	t.Logf("%d NOTIFYs in %s caused %d transfers; the change answered %s after the flood", sent, elapsed, got, took)
	assert.LessOrEqual(t, got, int((elapsed+took)/transferGap)+2, "at most one transfer per %s", transferGap)
}
