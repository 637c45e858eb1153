package dnsresolver

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
)

// answered counts every answer r sent: the members' polls, transfers and
// NOTIFYs it answered, and the test's own queries.
func answered(r *Resolver) uint64 {
	var n uint64
	for _, c := range r.Stats().Queries {
		n += c
	}
	return n
}

// afterNotifyRetries sleeps until whatever NOTIFY retries resolvers
// started at start made (a loaded machine may delay an acknowledgement)
// are over: notifyTries waits of 250 ms, 500 ms, ..., 4 s.
func afterNotifyRetries(start time.Time) {
	time.Sleep(time.Until(start.Add(notifyWait * (1<<notifyTries - 1))))
}

// TestSyncIdleIsQuiet checks that, with the default (slow, fallback)
// poll, two synced resolvers send each other nothing while nothing
// changes, and that a change still answers on the other node within a
// second: NOTIFY makes the member pull at once.
func TestSyncIdleIsQuiet(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	web := rec("web", 1, 5)
	start := time.Now()
	r1 := n1.startPolling(t, n1.config([]Member{n2.member()}, web), 0)
	r2 := n2.startPolling(t, n2.config([]Member{n1.member()}, rec("api", 2, 7)), 0)
	n2.waitFor(t, firstSync, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")
	n1.waitFor(t, second, "api.shop.internal.", dns.TypeA, "A 10.20.2.7")

	afterNotifyRetries(start)
	a1, a2 := answered(r1), answered(r2)
	time.Sleep(3 * time.Second) // the old poll interval was 2 s
	assert.Equal(t, a1, answered(r1), "node1 answered something while the network was idle")
	assert.Equal(t, a2, answered(r2), "node2 answered something while the network was idle")

	require.NoError(t, r1.Update(n1.config([]Member{n2.member()}, web, rec("new", 1, 9))))
	took := n2.waitFor(t, second, "new.shop.internal.", dns.TypeA, "A 10.20.1.9")
	t.Logf("a new name answered on the other node after %s without polling", took)
}

// recheckLab starts two polling resolvers that know each other, node1's
// with a record, and returns once node2 holds it and node1's NOTIFY
// retries are over.
func recheckLab(t *testing.T) (n1, n2 *testNode, r1, r2 *Resolver, cfg1 Config) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 = newLab(t)
	cfg1 = n1.config([]Member{n2.member()}, rec("web", 1, 5))
	start := time.Now()
	r1 = n1.startPolling(t, cfg1, time.Hour)
	r2 = n2.startPolling(t, n2.config([]Member{n1.member()}), time.Hour)
	n2.waitFor(t, firstSync, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")
	afterNotifyRetries(start)
	return n1, n2, r1, r2, cfg1
}

// TestSyncRecheckAfterUpdate checks that an Update that changes nothing
// (an apply that found everything in place) still makes the resolver
// check each member's serial soon, recheckCount times, and then no more:
// that is the packet over each live link `znet deploy` waits for.
func TestSyncRecheckAfterUpdate(t *testing.T) {
	n1, n2, r1, r2, cfg1 := recheckLab(t)
	before := answered(r2)

	require.NoError(t, r1.Update(cfg1))
	require.Eventually(t, func() bool { return answered(r2) > before }, recheckInterval*5/4+second, 10*time.Millisecond,
		"node1 did not ask node2 for its serial after an Update")
	time.Sleep(time.Duration(recheckCount)*recheckInterval*5/4 + second)
	assert.Equal(t, before+recheckCount, answered(r2), "node2 answered one serial check per quick poll")

	// A change of node1's records: node2 acknowledges the NOTIFY (and asks
	// for the serial and the zone); node1 adds no quick polls.
	require.NoError(t, r1.Update(n1.config([]Member{n2.member()}, rec("web", 1, 5), rec("api", 1, 6))))
	n2.waitFor(t, second, "api.shop.internal.", dns.TypeA, "A 10.20.1.6")
	before = answered(r2) // the NOTIFY was acknowledged before the records came
	time.Sleep(time.Duration(recheckCount)*recheckInterval*5/4 + second)
	assert.Equal(t, before, answered(r2), "node1 polled node2 after a change of its own records")
}

// TestSyncRecheckAfterUpdateBurst checks that Updates in a burst move
// the quick polls to after the last of them, as each did when it
// signalled every member: none while the burst lasts (longer than a quick
// poll's wait), then recheckCount, though the member was signalled only
// for the first (askRecheck).
func TestSyncRecheckAfterUpdateBurst(t *testing.T) {
	_, _, r1, r2, cfg1 := recheckLab(t)
	before := answered(r2)

	for end := time.Now().Add(recheckInterval*5/4 + second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		require.NoError(t, r1.Update(cfg1))
	}
	assert.Equal(t, before, answered(r2), "node1 polled node2 while Updates kept coming")
	require.Eventually(t, func() bool { return answered(r2) > before }, recheckInterval*5/4+second, 10*time.Millisecond,
		"node1 did not ask node2 for its serial after the last Update")
	time.Sleep(time.Duration(recheckCount)*recheckInterval*5/4 + second)
	assert.Equal(t, before+recheckCount, answered(r2), "node2 answered one serial check per quick poll")
}

// TestAskRecheckSignalsOnlyUnarmed checks that an ask for quick polls
// signals a member's goroutine only when it is not already waiting for
// one, and that the goroutine then times them from the ask.
func TestAskRecheckSignalsOnlyUnarmed(t *testing.T) {
	m := &member{recheck: make(chan struct{}, 1)}
	var q quickPolls
	d, armed := q.wait(m, time.Hour)
	require.False(t, armed)
	require.Equal(t, time.Hour, d)
	m.askRecheck(monoNow())
	require.Len(t, m.recheck, 1, "an unarmed member is signalled")
	<-m.recheck
	require.True(t, q.asked(m, true))

	d, armed = q.wait(m, time.Hour)
	require.True(t, armed)
	require.LessOrEqual(t, d, recheckInterval*5/4)
	require.Equal(t, recheckCount-1, q.left)
	require.False(t, q.asked(m, false), "no ask since")

	at := monoNow() - int64(time.Second) // an ask a second ago
	m.askRecheck(at)
	require.Empty(t, m.recheck, "an armed member reads the ask when it wakes")
	require.True(t, q.asked(m, false))
	require.Equal(t, recheckCount, q.left)
	d, _ = q.wait(m, time.Hour)
	require.LessOrEqual(t, d, recheckInterval*5/4-time.Second, "the first quick poll counts from the ask")
}

func TestPollDelay(t *testing.T) {
	tests := []struct {
		name     string
		members  int
		poll     time.Duration
		min, max time.Duration
	}{
		{name: "few members", members: 9, poll: 30 * time.Second, min: 22500 * time.Millisecond, max: 37500 * time.Millisecond},
		{name: "at the budget", members: pollBudget, poll: 30 * time.Second, min: 22500 * time.Millisecond, max: 37500 * time.Millisecond},
		{name: "twice the budget", members: 2 * pollBudget, poll: 30 * time.Second, min: 45 * time.Second, max: 75 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Resolver{opts: Options{PollInterval: tt.poll}, members: map[string]*member{}}
			for i := range tt.members {
				r.members[netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}).String()] = &member{}
			}
			seen := map[time.Duration]bool{}
			for range 200 {
				d := r.pollDelay()
				require.GreaterOrEqual(t, d, tt.min)
				require.LessOrEqual(t, d, tt.max)
				seen[d] = true
			}
			assert.Greater(t, len(seen), 100, "the delays are spread, not one value")
		})
	}
}

// TestSyncRetriesSoonAfterFailure checks that a member that could not be
// reached at first (at a deploy its resolver may start later) is tried
// again within seconds, not at the slow poll, even when its NOTIFYs are
// lost.
func TestSyncRetriesSoonAfterFailure(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	n2.startPolling(t, n2.config([]Member{n1.member()}), time.Hour)
	// node2's first tries at node1 fail (node1 is no member held back:
	// node2 tries at once, and again retryFirst later).
	time.Sleep(retryFirst + second/2)

	r1 := n1.startPolling(t, n1.config(nil, rec("web", 1, 5)), time.Hour)
	r1.dropNotify.Store(true)
	require.NoError(t, r1.Update(n1.config([]Member{n2.member()}, rec("web", 1, 5))))
	took := n2.waitFor(t, 4*retryFirst+second, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")
	t.Logf("node2 got node1's records %s after node1 started", took)
}

func TestNextRetry(t *testing.T) {
	failed := errors.New("unreachable")
	assert.Zero(t, nextRetry(0, nil))
	assert.Zero(t, nextRetry(8*time.Second, nil), "a success ends the retries")
	assert.Equal(t, retryFirst, nextRetry(0, failed))
	assert.Equal(t, 2*retryFirst, nextRetry(retryFirst, failed))
	assert.Equal(t, time.Hour, nextRetry(time.Hour, failed), "bounded")
}

// TestSyncNotifyChecksSerial checks that a NOTIFY makes the member check
// the serial, and transfer only when it changed (RFC 1996): at a deploy a
// NOTIFY often follows a transfer that already got everything.
func TestSyncNotifyChecksSerial(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	f := &fakeMember{}
	f.host.Store(5)
	f.serve(t, n1)
	n2.startPolling(t, n2.config([]Member{n1.member()}), time.Hour)

	notify := notifier(t, n1, n2)
	notify() // ends node2's quiet start
	n2.waitFor(t, second, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")
	require.Equal(t, int32(1), f.transfers.Load())

	notify()
	time.Sleep(transferGap + 250*time.Millisecond)
	assert.Equal(t, int32(1), f.transfers.Load(), "a NOTIFY without a change caused a transfer")

	f.host.Store(6)
	notify()
	took := n2.waitFor(t, second, "web.shop.internal.", dns.TypeA, "A 10.20.1.6")
	assert.Equal(t, int32(2), f.transfers.Load())
	t.Logf("a change answered %s after its NOTIFY", took)
}

// notifier returns a function that sends to's resolver, from from's
// gateway, the NOTIFY from's resolver sends when its records change.
func notifier(t *testing.T, from, to *testNode) func() {
	t.Helper()
	var c net.Conn
	require.NoError(t, from.do(func() error {
		var err error
		c, err = net.Dial("udp", net.JoinHostPort(to.gw4.String(), "53"))
		return err
	}))
	t.Cleanup(func() { _ = c.Close() })
	m := new(dns.Msg)
	m.SetNotify(from.id + "._local.shop.internal.")
	pkt, err := m.Pack()
	require.NoError(t, err)
	return func() {
		_, err := c.Write(pkt)
		require.NoError(t, err)
	}
}
