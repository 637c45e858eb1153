package dnsresolver

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
)

// second is the promise: a change on one node answers on every node within
// a second.
const second = time.Second

// firstSync bounds node2's first copy of node1's records after both start:
// node2's id sorts higher, so it holds back its first transfer for
// quietStart unless node1's NOTIFY comes first.
const firstSync = quietStart + second

func TestSyncAddRemove(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	web, api := rec("web", 1, 5), rec("api", 2, 7)
	r1 := n1.start(t, n1.config([]Member{n2.member()}, web))
	r2 := n2.start(t, n2.config([]Member{n1.member()}, api))

	t.Run("initial sync", func(t *testing.T) {
		n2.waitFor(t, firstSync, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")
		n1.waitFor(t, second, "api.shop.internal.", dns.TypeAAAA, "AAAA fd3c:9a1e:77b2:2::7")
	})
	t.Run("added", func(t *testing.T) {
		require.NoError(t, r1.Update(n1.config([]Member{n2.member()}, web, rec("new", 1, 9))))
		took := n2.waitFor(t, second, "new.shop.internal.", dns.TypeA, "A 10.20.1.9")
		t.Logf("a new name answered on the other node after %s", took)
	})
	t.Run("same name on both nodes", func(t *testing.T) {
		require.NoError(t, r2.Update(n2.config([]Member{n1.member()}, api, rec("web", 2, 5))))
		n1.waitFor(t, second, "web.shop.internal.", dns.TypeA, "A 10.20.1.5", "A 10.20.2.5")
		n2.waitFor(t, second, "web.shop.internal.", dns.TypeA, "A 10.20.1.5", "A 10.20.2.5")
	})
	t.Run("removed", func(t *testing.T) {
		require.NoError(t, r1.Update(n1.config([]Member{n2.member()}, web)))
		took := n2.waitFor(t, second, "new.shop.internal.", dns.TypeA, "NXDOMAIN")
		t.Logf("a removed name was gone on the other node after %s", took)
	})
	t.Run("over TCP, IPv6, PTR, across the mesh", func(t *testing.T) {
		m, _ := n2.query(t, n2.gw6, "web.shop.internal.", dns.TypeAAAA, true)
		assert.Equal(t, []string{"AAAA fd3c:9a1e:77b2:1::5", "AAAA fd3c:9a1e:77b2:2::5"}, render(m.Answer))
		assert.True(t, m.Authoritative)
		m, _ = n2.query(t, n2.gw4, "5.1.20.10.in-addr.arpa.", dns.TypePTR, false)
		assert.Equal(t, []string{"PTR web.shop.internal."}, render(m.Answer))
		m, _ = n2.query(t, n1.gw4, "api.shop.internal.", dns.TypeA, false) // node1's resolver
		assert.Equal(t, []string{"A 10.20.2.7"}, render(m.Answer))
		m, _ = n2.query(t, n2.gw4, "node1.node.shop.internal.", dns.TypeA, false)
		assert.Equal(t, []string{"A 10.20.1.1"}, render(m.Answer))
	})
	t.Run("dig", func(t *testing.T) {
		out, err := exec.Command("ip", "netns", "exec", n2.ns, "dig", "+short", "+tcp", "@10.20.2.1", "web.shop.internal", "A").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, []string{"10.20.1.5", "10.20.2.5"}, strings.Fields(string(out)))
		out, err = exec.Command("ip", "netns", "exec", n2.ns, "dig", "+short", "@10.20.2.1", "-x", "10.20.1.5").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, "web.shop.internal.", strings.TrimSpace(string(out)))
		out, err = exec.Command("ip", "netns", "exec", n2.ns, "dig", "@10.20.2.1", "example.com").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "status: REFUSED")
	})
	t.Run("stats", func(t *testing.T) {
		s1, s2 := r1.Stats(), r2.Stats()
		assert.Equal(t, 1, s1.Records)
		require.Contains(t, s2.Members, "node1")
		got := s2.Members["node1"]
		assert.Equal(t, s1.Serial, got.Serial, "node2 holds node1's serial")
		assert.Equal(t, 1, got.Records)
		assert.Empty(t, got.Err)
		assert.WithinDuration(t, time.Now(), got.LastSync, 5*time.Second)
	})
	t.Run("the transfer zone is for members only", func(t *testing.T) {
		// From node1's own address, not a member's gateway.
		m, _ := n1.query(t, n1.gw4, "node1._local.shop.internal.", dns.TypeAXFR, true)
		assert.Equal(t, dns.RcodeRefused, m.Rcode)
	})
}

func TestSyncMemberRemoved(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	n1.start(t, n1.config([]Member{n2.member()}, rec("web", 1, 5)))
	r2 := n2.start(t, n2.config([]Member{n1.member()}))
	n2.waitFor(t, firstSync, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")

	require.NoError(t, r2.Update(n2.config(nil)))
	// At once, not within a second.
	assert.Equal(t, []string{"NXDOMAIN"}, n2.lookup(t, "web.shop.internal.", dns.TypeA))
	assert.Equal(t, []string{"NXDOMAIN"}, n2.lookup(t, "5.1.20.10.in-addr.arpa.", dns.TypePTR))
	assert.Equal(t, []string{"NXDOMAIN"}, n2.lookup(t, "node1.node.shop.internal.", dns.TypeA))
	assert.NotContains(t, r2.Stats().Members, "node1")

	// node1 knows nothing new, so it sends no NOTIFY; node2, whose id
	// sorts higher, holds back its first transfer for quietStart.
	require.NoError(t, r2.Update(n2.config([]Member{n1.member()})))
	n2.waitFor(t, firstSync, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")
}

func TestSyncMemberDown(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	r1 := n1.start(t, n1.config([]Member{n2.member()}, rec("web", 1, 5)))
	r2 := n2.start(t, n2.config([]Member{n1.member()}, rec("api", 2, 7)))
	n2.waitFor(t, firstSync, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")

	// node1 goes away: its resolver stops and packets to it vanish, so
	// node2's polls time out instead of failing fast.
	require.NoError(t, r1.Close())
	n1.removeAddr(t, netip.PrefixFrom(n1.gw4, 24))
	n1.removeAddr(t, netip.PrefixFrom(n1.gw6, 64))

	start := time.Now()
	require.NoError(t, r2.Update(n2.config([]Member{n1.member()}, rec("api", 2, 7), rec("new", 2, 8))))
	assert.Less(t, time.Since(start), 100*time.Millisecond, "an update does not wait for a member that is down")

	var slowest time.Duration
	var n int
	for time.Since(start) < 3*time.Second { // several poll rounds and NOTIFY retries
		for _, q := range []struct {
			name string
			want string
		}{{"web.shop.internal.", "A 10.20.1.5"}, {"new.shop.internal.", "A 10.20.2.8"}} {
			m, took := n2.query(t, n2.gw4, q.name, dns.TypeA, false)
			require.Equal(t, []string{q.want}, render(m.Answer), "node1's last records stay")
			slowest = max(slowest, took)
			n++
		}
	}
	t.Logf("%d queries while a member was down, slowest %s", n, slowest)
	assert.Less(t, slowest, 250*time.Millisecond, "answers stay fast")
	got := r2.Stats().Members["node1"]
	assert.NotEmpty(t, got.Err)
	assert.Equal(t, 1, got.Records)
}

func TestSyncRestart(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	r1 := n1.start(t, n1.config([]Member{n2.member()}, rec("web", 1, 5)))
	n2.start(t, n2.config([]Member{n1.member()}, rec("api", 2, 7)))
	n2.waitFor(t, firstSync, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")
	old := r1.Stats().Serial

	// node1's network process restarts with other workloads.
	require.NoError(t, r1.Close())
	n2.waitFor(t, second, "web.shop.internal.", dns.TypeA, "A 10.20.1.5") // still held
	r1 = n1.start(t, n1.config([]Member{n2.member()}, rec("fresh", 1, 6)))
	assert.Greater(t, int32(r1.Stats().Serial-old), int32(0), "serials grow across restarts")
	took := n2.waitFor(t, second, "fresh.shop.internal.", dns.TypeA, "A 10.20.1.6")
	n2.waitFor(t, second, "web.shop.internal.", dns.TypeA, "NXDOMAIN")
	t.Logf("a restarted member's records answered after %s", took)
	n1.waitFor(t, second, "api.shop.internal.", dns.TypeA, "A 10.20.2.7")
}

func TestSyncPolling(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	r1 := n1.start(t, n1.config([]Member{n2.member()}, rec("web", 1, 5)))
	n2.start(t, n2.config([]Member{n1.member()}))
	n2.waitFor(t, firstSync, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")

	// Lost NOTIFYs: node2 still finds the change by polling the serial.
	r1.dropNotify.Store(true)
	require.NoError(t, r1.Update(n1.config([]Member{n2.member()}, rec("web", 1, 5), rec("polled", 1, 6))))
	took := n2.waitFor(t, 2*testPoll+second, "polled.shop.internal.", dns.TypeA, "A 10.20.1.6")
	t.Logf("found by polling after %s (poll interval %s)", took, testPoll)
}

func TestSyncIPv6Only(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	v6only := func(n *testNode, members []Member, local ...Record) Config {
		cfg := n.config(members, local...)
		cfg.Gateway4 = netip.Addr{}
		for i := range cfg.Members {
			cfg.Members[i].Gateway4 = netip.Addr{}
		}
		return cfg
	}
	r1 := n1.start(t, v6only(n1, []Member{n2.member()}))
	n2.start(t, v6only(n2, []Member{n1.member()}))
	require.NoError(t, r1.Update(v6only(n1, []Member{n2.member()}, rec("web", 1, 5))))
	m := func() []string {
		resp, _ := n2.query(t, n2.gw6, "web.shop.internal.", dns.TypeAAAA, false)
		return render(resp.Answer)
	}
	require.Eventually(t, func() bool { return len(m()) == 1 }, second, 5*time.Millisecond)
	assert.Equal(t, []string{"AAAA fd3c:9a1e:77b2:1::5"}, m())
}

// TestSyncQuietStart checks that a node sends nothing to a new member
// held by its Config (new to the apply) whose id sorts below its own for quietStart (that member starts the
// WireGuard link; see peers.StaggerDelay), unless the member's NOTIFY
// shows the link is up.
func TestSyncQuietStart(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	// node1 learns of node2 only once its NOTIFYs are dropped.
	r1 := n1.start(t, n1.config(nil, rec("web", 1, 5)))
	r1.dropNotify.Store(true)
	require.NoError(t, r1.Update(n1.config([]Member{n2.member()}, rec("web", 1, 5))))
	start := time.Now()
	n2.start(t, held(n2.config([]Member{n1.member()})))
	took := n2.waitFor(t, firstSync, "web.shop.internal.", dns.TypeA, "A 10.20.1.5")
	assert.GreaterOrEqual(t, time.Since(start), quietStart, "node2 fetched node1's records after %s", took)
}

// TestSyncChangeEndsQuiet checks that a change of this node's records (an
// attach) is announced at once to a member still in its quiet start, and
// that nothing is sent to it before.
func TestSyncChangeEndsQuiet(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n1, n2 := newLab(t)
	f := &fakeMember{}
	f.host.Store(5)
	f.serve(t, n1)
	r2 := n2.start(t, held(n2.config([]Member{n1.member()})))
	time.Sleep(500 * time.Millisecond)
	assert.Zero(t, f.notifies.Load()+f.transfers.Load(), "node1's id sorts lower: node2 is quiet")

	require.NoError(t, r2.Update(n2.config([]Member{n1.member()}, rec("api", 2, 7))))
	assert.Eventually(t, func() bool { return f.notifies.Load() > 0 }, 500*time.Millisecond, 5*time.Millisecond,
		"the attach is announced at once")
}

func TestQuietFor(t *testing.T) {
	assert.Zero(t, quietFor(false, true, true), "a member synced under other gateways")
	assert.Zero(t, quietFor(true, false, false), "one new member whose id sorts higher: at once")
	assert.Equal(t, quietStart, quietFor(true, false, true), "its id sorts lower: it starts the tunnel")
	seen := map[time.Duration]bool{}
	for range 100 {
		d := quietFor(true, true, false)
		assert.GreaterOrEqual(t, d, quietStart, "in a crowd even the members this node starts the tunnel to wait")
		assert.Less(t, d, quietStart+crowdSpread)
		seen[d] = true
	}
	assert.Greater(t, len(seen), 50, "spread, not one value")
}

// held returns cfg holding back every member (Config.Hold): all of them
// are new to the apply, as at a deploy.
func held(cfg Config) Config {
	for _, m := range cfg.Members {
		cfg.Hold = append(cfg.Hold, m.ID)
	}
	return cfg
}

// TestSyncCrowdHold checks that a resolver starting a crowd of members
// holds back its first sync to them only when its Config holds them (a
// deploy: members new to the apply), and syncs every member at once when
// it holds none (a data plane restarted or rebuilt, whose members were
// all there before). node1 talks to a fake node2, whose id sorts higher
// (so only the crowd can hold it back), among unreachable others.
func TestSyncCrowdHold(t *testing.T) {
	for _, tc := range []struct {
		name string
		hold func(members []Member) []string
		held bool
	}{
		{"none held: a restart syncs at once", func([]Member) []string { return nil }, false},
		{"one held: no crowd", func([]Member) []string { return []string{"node2"} }, false},
		{"all held: a deploy waits", func(ms []Member) []string {
			var ids []string
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			return ids
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.SkipUnlessRoot(t)
			testutil.GoroutineLeakCheck(t)
			n1, n2 := newLab(t)
			f := &fakeMember{}
			f.host.Store(5)
			f.serve(t, n2)
			members := crowd(n2)
			cfg := n1.config(members, rec("web", 1, 5))
			cfg.Hold = tc.hold(members)
			n1.start(t, cfg)
			sent := func() bool { return f.notifies.Load()+f.transfers.Load() > 0 }
			if !tc.held {
				assert.Eventually(t, sent, second, 5*time.Millisecond, "node1 syncs node2 at once")
				return
			}
			time.Sleep(1500 * time.Millisecond)
			assert.False(t, sent(), "node1 holds back its first sync to node2")
		})
	}
}

// crowd returns n and more members (crowdMembers in all) whose gateways
// nothing routes to.
func crowd(n *testNode) []Member {
	out := []Member{n.member()}
	for i := len(out); i < crowdMembers; i++ {
		gw := netip.AddrFrom4([4]byte{10, 20, byte(i + 2), 1})
		out = append(out, Member{ID: fmt.Sprintf("node%d", i+2), Gateway4: gw, Subnet4: netip.PrefixFrom(gw, 24).Masked()})
	}
	return out
}
