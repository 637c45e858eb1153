package overlay

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/dataplane"
	"github.com/znet/znet/dnsresolver"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
)

// TestIdleDataplaneMemory starts a data plane, configures one peer and its
// resolver, reads it as often as status does and checks that the
// anonymous memory it keeps stays small: the packet buffers it allocated
// at start must not have been made resident (see internal/idlemem), and
// it runs on one P (idlemem.OneProc).
func TestIdleDataplaneMemory(t *testing.T) {
	d := startIdleDataplane(t)
	kib := pssAnonKiB(t, d.pid)
	t.Logf("data plane %d: Pss_Anon %d KiB", d.pid, kib)
	assert.LessOrEqual(t, kib, idleAnonKiB, "anonymous memory of an idle data plane")
}

// TestPolledDataplaneMemory checks an idle data plane past its start's
// hold after a hundred reads (status calls): the collector's first cycle,
// ~0.5 MiB of the runtime's own metadata, must not have run for so little
// garbage, and each read must leave little (dataplane.handleUAPI).
func TestPolledDataplaneMemory(t *testing.T) {
	d := startIdleDataplane(t)
	time.Sleep(pastHold)
	d.read(t, 100)
	kib := pssAnonKiB(t, d.pid)
	t.Logf("data plane %d: Pss_Anon %d KiB", d.pid, kib)
	assert.LessOrEqual(t, kib, polledAnonKiB, "anonymous memory of an idle data plane read a hundred times")

	// Read on (a node whose status is polled): once the garbage passed
	// idlemem's first bound (looked at every 5 s while the heap grows),
	// it stays bounded.
	d.read(t, 5000)
	time.Sleep(6 * time.Second)
	d.read(t, 5000)
	time.Sleep(time.Second) // the collector's renewal after its last cycle
	kib = pssAnonKiB(t, d.pid)
	t.Logf("data plane %d after 10,100 reads: Pss_Anon %d KiB", d.pid, kib)
	assert.LessOrEqual(t, kib, longPolledAnonKiB, "anonymous memory of an idle data plane read 10,100 times")
}

// Bounds on an idle data plane's anonymous memory (of this test binary
// run as one, which maps ~0.2 MiB more than znetd-dataplane), measured
// with one peer, its resolver and 20 reads: right after the start
// 1.89-1.91 MiB (2.35 MiB on all CPUs, with wireguard-go's UAPI handler);
// past the hold and a hundred more reads 2.01-2.03 MiB (3.68 MiB with the
// collector released, on all CPUs, with wireguard-go's handler).
//
// Read 10,100 times: ~3.1 MiB (8.6 MiB before idlemem.BoundIdleGarbage,
// growing by ~0.66 KiB a read up to 24 MiB at 35,000 reads).
const (
	idleAnonKiB       = 2150
	polledAnonKiB     = 2400
	longPolledAnonKiB = 3500
)

// pastHold is longer than the data plane holds its collector after the
// start (dataplane.serveDataplane).
const pastHold = 12 * time.Second

// idleDataplane is a data plane configured as znetd leaves an idle one.
type idleDataplane struct {
	b   *Userspace
	dev Device
	pid int
}

// startIdleDataplane starts a data plane in throwaway namespaces (unless
// not root, or under the race detector, whose shadow memory would count
// too), configures one peer, pushes its resolver's config as znetd does and
// reads it as often as status does.
func startIdleDataplane(t *testing.T) idleDataplane {
	t.Helper()
	testutil.SkipUnlessRoot(t)
	if raceEnabled {
		t.Skip("the race detector's shadow memory is counted too")
	}
	a, b := newTestNet(t)
	var logs logBuffer
	ba := newTestUserspace(t, a.ul, t.TempDir(), &logs)
	t.Cleanup(func() { killDataplanes(t, ba, a.dev) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid, err := ba.Ensure(ctx, a.dev)
	require.NoError(t, err, "logs:\n%s", logs.String())
	require.NoError(t, ba.Configure(ctx, a.dev, a.config(b)))
	require.NoError(t, dnsresolver.Push(ctx, ba.dnsSocket(a.dev), dnsresolver.Config{
		Network: "n1", NodeID: "a", Gateway4: a.overlay.Addr(), IPRange: a.overlay.Masked(),
	}))
	d := idleDataplane{b: ba, dev: a.dev, pid: pid}
	d.read(t, 20)
	return d
}

// read reads the data plane n times, as status does.
func (d idleDataplane) read(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range n {
		_, err := d.b.Show(ctx, d.dev)
		require.NoError(t, err)
	}
}

// pssAnonKiB returns the Pss_Anon of process pid in KiB.
func pssAnonKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Pss_Anon:"); ok {
			kib, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			require.NoError(t, err)
			return kib
		}
	}
	t.Fatalf("no Pss_Anon in smaps_rollup of %d", pid)
	return 0
}

// busyLog is what a data plane logs when it takes all its CPUs back
// (dataplane.Run).
const busyLog = "carrying traffic: all CPUs in use"

// TestDataplaneOneProcUntilBusy checks that a data plane runs on one P
// while its traffic is a few pings, and takes all its CPUs back once it
// carries a flood (see idlemem.OneProc).
func TestDataplaneOneProcUntilBusy(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	a, b := newTestNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// startPeer runs s's data plane, configured with other as its peer,
	// and returns a reader of its log.
	startPeer := func(s, other *side) func() string {
		run := t.TempDir()
		var logs logBuffer
		be := newTestUserspace(t, s.ul, run, &logs)
		t.Cleanup(func() { killDataplanes(t, be, s.dev) }) // before the backend closes
		_, err := be.Ensure(ctx, s.dev)
		require.NoError(t, err, "logs:\n%s", logs.String())
		require.NoError(t, be.Configure(ctx, s.dev, s.config(other)))
		s.addOverlayAddr(t)
		return func() string { return dataplane.Tail(run+"/"+s.dev.IfName+".log", 4000) }
	}
	logA, logB := startPeer(a, b), startPeer(b, a)

	ping(t, a.network, b.overlay.Addr())
	assert.NotContains(t, logA(), busyLog, "three pings are no traffic")
	assert.NotContains(t, logB(), busyLog, "three pings are no traffic")

	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", a.network,
		"ping", "-f", "-q", "-c", "3000", "-w", "30", b.overlay.Addr().String()).CombinedOutput()
	require.NoError(t, err, "ping flood:\n%s", out)
	for name, log := range map[string]func() string{"sender": logA, "receiver": logB} {
		assert.Eventually(t, func() bool { return strings.Contains(log(), busyLog) }, 5*time.Second, 50*time.Millisecond,
			"the %s took its CPUs back; log:\n%s", name, log())
		assert.Equal(t, 1, strings.Count(log(), busyLog), "%s: once", name)
	}
}

// startOneDataplane starts a's data plane, with b as its peer, and
// returns both sides, a's backend and a reader of its data plane's log.
func startOneDataplane(ctx context.Context, t *testing.T) (a, b *side, be *Userspace, log func() string) {
	t.Helper()
	testutil.SkipUnlessRoot(t)
	a, b = newTestNet(t)
	run := t.TempDir()
	var logs logBuffer
	be = newTestUserspace(t, a.ul, run, &logs)
	t.Cleanup(func() { killDataplanes(t, be, a.dev) })
	_, err := be.Ensure(ctx, a.dev)
	require.NoError(t, err, "logs:\n%s", logs.String())
	require.NoError(t, be.Configure(ctx, a.dev, a.config(b)))
	return a, b, be, func() string { return dataplane.Tail(run+"/"+a.dev.IfName+".log", 4000) }
}

// TestIdleDataplaneLeavesItsTUNAlone checks that an idle data plane
// does not touch its TUN: wireguard-go's status poll wrote to it once a
// second for as long as the data plane lived, waking every data plane of
// a node once a second (nearly all of an idle one's CPU). Writes are
// counted by the kernel (/proc/PID/io syscw): a data plane without
// traffic writes nothing, not even a log line.
func TestIdleDataplaneLeavesItsTUNAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, _, be, log := startOneDataplane(ctx, t)
	pid := be.PID(a.dev)
	require.NotZero(t, pid)
	time.Sleep(500 * time.Millisecond) // the start's own writes
	before := sysWrites(t, pid)
	time.Sleep(3500 * time.Millisecond)
	assert.Equal(t, before, sysWrites(t, pid), "writes in 3.5 s of idling; log:\n%s", log())
}

// sysWrites returns the write system calls process pid made so far.
func sysWrites(t *testing.T, pid int) int { return procIO(t, pid, "syscw") }

// procIO returns the counter key ("syscr", "syscw") of /proc/PID/io.
func procIO(t *testing.T, pid int, key string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(rest))
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/io", key, pid)
	return 0
}

// TestBusyOnceDataplaneIdlesQuietly checks that a data plane that took
// its CPUs back (a flood) reads nothing once the traffic stops: with the
// runtime's default GOMAXPROCS the runtime read the cgroup's CPU quota
// every second (updatemaxprocs), waking every data plane that ever
// carried traffic once a second.
func TestBusyOnceDataplaneIdlesQuietly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b, be, log := startOneDataplane(ctx, t)
	bb := newTestUserspace(t, b.ul, t.TempDir(), &logBuffer{})
	t.Cleanup(func() { killDataplanes(t, bb, b.dev) })
	_, err := bb.Ensure(ctx, b.dev)
	require.NoError(t, err)
	require.NoError(t, bb.Configure(ctx, b.dev, b.config(a)))
	for _, s := range []*side{a, b} {
		s.addOverlayAddr(t)
		// The kernel's own IPv6 on the link (router solicitations every
		// 4 s after it is up) would be reads from the TUN: not this test's.
		out, err := exec.Command("ip", "netns", "exec", s.network, "sysctl", "-qw",
			"net.ipv6.conf."+s.dev.IfName+".disable_ipv6=1").CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", a.network,
		"ping", "-f", "-q", "-c", "3000", "-w", "30", b.overlay.Addr().String()).CombinedOutput()
	require.NoError(t, err, "ping flood:\n%s", out)
	require.Eventually(t, func() bool { return strings.Contains(log(), busyLog) }, 5*time.Second, 50*time.Millisecond, "log:\n%s", log())

	pid := be.PID(a.dev)
	time.Sleep(500 * time.Millisecond)
	before := procIO(t, pid, "syscr")
	time.Sleep(3500 * time.Millisecond)
	assert.Equal(t, before, procIO(t, pid, "syscr"), "reads in 3.5 s after the traffic; log:\n%s", log())
}

// TestDataplaneJunkStaysOnOneProc checks that UDP to a data plane's
// public port that is not WireGuard (anyone on the underlay can send it)
// does not take the data plane off its one P: only traffic the device
// carries, to or from its network, counts.
func TestDataplaneJunkStaysOnOneProc(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b, _, log := startOneDataplane(ctx, t)

	// 5,000 datagrams from b's underlay, as fast as bash sends them: far
	// more than the 256 batches a second that mean traffic.
	junk := fmt.Sprintf("for i in $(seq 5000); do echo junk > /dev/udp/%s/%d; done", a.addr, a.port)
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", b.underlay, "bash", "-c", junk).CombinedOutput()
	require.NoError(t, err, "sending junk:\n%s", out)
	time.Sleep(time.Second) // a raise is logged at once; give it time to show
	assert.NotContains(t, log(), busyLog, "junk is no traffic")
}

// TestDataplaneDNSLoadTakesAllProcs checks that a network busy with
// lookups only, no tunnel traffic, takes its data plane off its one P
// too: its resolver answers in the data plane's process.
func TestDataplaneDNSLoadTakesAllProcs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, _, be, log := startOneDataplane(ctx, t)
	a.addOverlayAddr(t)
	require.NoError(t, dnsresolver.Push(ctx, be.dnsSocket(a.dev), dnsresolver.Config{
		Network: "n1", NodeID: "a", Gateway4: a.overlay.Addr(), IPRange: a.overlay.Masked(),
	}))

	h, err := namespaces.Open(a.network)
	require.NoError(t, err)
	defer func() { _ = h.Close() }()
	server := netip.AddrPortFrom(a.overlay.Addr(), 53).String()
	lookups := func(n int) {
		t.Helper()
		require.NoError(t, namespaces.Do(h, func() error {
			c, err := net.Dial("udp", server)
			if err != nil {
				return err
			}
			defer func() { _ = c.Close() }()
			dc := &dns.Conn{Conn: c}
			for range n {
				q := new(dns.Msg).SetQuestion("gw.n1.", dns.TypeA)
				if err := dc.WriteMsg(q); err != nil {
					return err
				}
				if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
					return err
				}
				if _, err := dc.ReadMsg(); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	t.Cleanup(func() { t.Logf("log:\n%s", log()) })
	// The lookups come from the data plane's own namespace, to its own
	// address: over the loopback.
	out, err := exec.Command("ip", "-n", a.network, "link", "set", "lo", "up").CombinedOutput()
	require.NoError(t, err, "%s", out)
	lookups(10)
	assert.NotContains(t, log(), busyLog, "ten lookups are no load")
	lookups(3000)
	assert.Eventually(t, func() bool { return strings.Contains(log(), busyLog) }, 5*time.Second, 50*time.Millisecond,
		"3,000 lookups took the data plane's CPUs back; log:\n%s", log())
}
