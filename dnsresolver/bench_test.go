package dnsresolver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/internal/testutil/nstest"
	"github.com/znet/znet/namespaces"
)

// benchNames is how many workload names the benchmark zone holds, as in
// `make bench BENCH=dns`.
const benchNames = 1000

// benchServer starts a resolver serving benchNames names (app0...) on
// 10.20.1.1:53 in a fresh namespace, closed in b.Cleanup, and returns the
// namespace's name and handle.
func benchServer(b *testing.B) (string, netns.NsHandle) {
	b.Helper()
	testutil.SkipUnlessRoot(b)
	name := "zt-dnsres-" + testutil.RandomHex(b, 4)
	h := nstest.CreateNS(b, name)
	nh, err := netlink.NewHandleAt(h)
	require.NoError(b, err)
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	require.NoError(b, err)
	require.NoError(b, nh.LinkSetUp(lo))
	gw := netip.MustParsePrefix("10.20.1.1/32")
	require.NoError(b, nh.AddrAdd(lo, &netlink.Addr{IPNet: ipNet(gw), Flags: unix.IFA_F_NODAD}))

	cfg := testConfig()
	cfg.Gateway6 = netip.Addr{}
	cfg.Members = nil
	cfg.Local = nil
	for i := range benchNames {
		cfg.Local = append(cfg.Local, Record{
			Name: fmt.Sprintf("app%d", i),
			IPv4: netip.AddrFrom4([4]byte{10, 20, byte(200 + i/250), byte(1 + i%250)}),
		})
	}
	r, err := NewWithOptions(cfg, nil, Options{Do: func(fn func() error) error { return namespaces.Do(h, fn) }})
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, r.Close()) })
	return name, h
}

// BenchmarkServeUDP sends A queries for the zone's names to the resolver
// over UDP from clients in its namespace, each keeping a window of queries
// outstanding (like dnsperf -c 2 -q 100); ns/op is per answered query.
// The clients share the CPUs with the server: compare runs, not absolutes.
func BenchmarkServeUDP(b *testing.B) {
	_, h := benchServer(b)
	const clients, window = 2, 50
	queries := make([][]byte, benchNames)
	for i := range queries {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("app%d.shop.internal.", i), dns.TypeA)
		m.Id = 0
		var err error
		queries[i], err = m.Pack()
		require.NoError(b, err)
	}
	conns := make([]*net.UDPConn, clients)
	for i := range conns {
		require.NoError(b, namespaces.Do(h, func() error {
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort("10.20.1.1:53")))
			conns[i] = c
			return err
		}))
		b.Cleanup(func() { _ = conns[i].Close() })
	}
	var wg sync.WaitGroup
	errs := make([]error, clients)
	b.ResetTimer()
	start := time.Now()
	for i, c := range conns {
		n := b.N / clients
		if i == 0 {
			n += b.N % clients
		}
		wg.Go(func() { errs[i] = runClient(c, queries, n, window) })
	}
	wg.Wait()
	b.StopTimer()
	for _, err := range errs {
		require.NoError(b, err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "qps")
}

// runClient sends n queries on c, keeping window outstanding, and waits
// for every answer; a query lost for 200 ms is sent again.
func runClient(c *net.UDPConn, queries [][]byte, n, window int) error {
	buf := make([]byte, 1500)
	sent, got, id := 0, 0, uint16(0)
	send := func() error {
		q := queries[int(id)%len(queries)]
		q[0], q[1] = byte(id>>8), byte(id)
		id++
		sent++
		_, err := c.Write(q)
		return err
	}
	for sent < min(n, window) {
		if err := send(); err != nil {
			return err
		}
	}
	for got < n {
		if err := c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
			return err
		}
		k, err := c.Read(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				sent = got // all lost: send the window again
				for sent-got < window && sent < n {
					if err := send(); err != nil {
						return err
					}
				}
				continue
			}
			return err
		}
		if k < 12 || buf[3]&0xf != dns.RcodeSuccess {
			return fmt.Errorf("bad answer % x", buf[:k])
		}
		got++
		if sent < n {
			if err := send(); err != nil {
				return err
			}
		}
	}
	return nil
}

// BenchmarkDnsperf runs dnsperf (if installed) against the resolver the
// way `make bench BENCH=dns` does, for 5 s per iteration, and reports its
// queries per second. Run it with -benchtime=1x; a CPU profile then shows
// only the server.
func BenchmarkDnsperf(b *testing.B) {
	if _, err := exec.LookPath("dnsperf"); err != nil {
		b.Skip("dnsperf not installed")
	}
	ns, _ := benchServer(b)
	var q strings.Builder
	for i := range benchNames {
		fmt.Fprintf(&q, "app%d.shop.internal. A\n", i)
	}
	file := filepath.Join(b.TempDir(), "queries")
	require.NoError(b, os.WriteFile(file, []byte(q.String()), 0o644))
	secs := 5
	if s := os.Getenv("DNSPERF_SECONDS"); s != "" {
		secs, _ = strconv.Atoi(s)
	}
	re := regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	lost := regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
	var total float64
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+30)*time.Second)
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "dnsperf", "-s", "10.20.1.1",
			"-d", file, "-l", strconv.Itoa(secs), "-c", "2", "-q", "100", "-t", "2").CombinedOutput()
		cancel()
		require.NoError(b, err, "%s", out)
		m := re.FindSubmatch(out)
		require.NotNil(b, m, "%s", out)
		v, err := strconv.ParseFloat(string(m[1]), 64)
		require.NoError(b, err)
		total += v
		if l := lost.FindSubmatch(out); l != nil && string(l[1]) != "0" {
			b.Logf("dnsperf lost %s queries", l[1])
		}
	}
	b.ReportMetric(total/float64(b.N), "qps")
}
