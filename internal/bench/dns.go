package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/znet/znet/api"
	"github.com/znet/znet/deploy"
	"github.com/znet/znet/dnsresolver"
	"github.com/znet/znet/ipam"
	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
)

// nsdGlue stands for NSD's address in the zone text until startNSD knows it.
const nsdGlue = "192.0.2.53"

const (
	dnsNodes   = 20   // nodes of the DNS lab (propagation goes to all of them)
	dnsNames   = 1000 // workload names the resolver and NSD serve
	dnsNetwork = "dns"
	dnsSeconds = 10 // each unpaced dnsperf run
	latSeconds = 5  // each paced dnsperf run
	latQPS     = 10000
)

// dnsWorkload is a workload of the DNS lab: its namespace and the resolver
// it asks (its node's gateway).
type dnsWorkload struct {
	ns       string
	resolver netip.Addr
}

// dnsPart measures how fast a new name reaches every node of a 20-node
// lab, then, on a lab of its own (two nodes, so that the other 18 nodes'
// background traffic does not blur the latencies), the resolver of node 1
// against NSD.
func dnsPart(ctx context.Context, cfg Config, log *slog.Logger) ([]Row, error) {
	prop, err := propagation(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	l, down, err := upLab(ctx, cfg.Znetd, 2, log, "DNS")
	defer down()
	if err != nil {
		return nil, err
	}
	var p procs
	defer p.stop() // before down: they run in the lab's namespaces
	ws, err := dnsLab(ctx, l)
	if err != nil {
		return nil, err
	}
	queries, zone, err := pushNames(ctx, l)
	if err != nil {
		return nil, err
	}
	nsdAddr, err := startNSD(ctx, l, ws[0].ns, zone, &p)
	if err != nil {
		return nil, fmt.Errorf("nsd: %w", err)
	}
	qfile := filepath.Join(l.Dir, "queries.txt")
	if err := os.WriteFile(qfile, []byte(queries), 0o644); err != nil {
		return nil, err
	}
	targets := []struct{ name, addr string }{{"znet resolver", ws[0].resolver.String()}, {"NSD", nsdAddr}}
	qps := map[string][]float64{}
	lost := map[string]int{}
	p50 := map[string][]float64{}
	p99 := map[string][]float64{}
	for r := range cfg.Rounds {
		for i := range targets {
			t := targets[(i+r)%len(targets)]
			res, err := dnsperf(ctx, ws[0].ns, t.addr, qfile, dnsSeconds, 0)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			qps[t.name] = append(qps[t.name], res.qps)
			lost[t.name] += res.lost
			lat, err := dnsperf(ctx, ws[0].ns, t.addr, qfile, latSeconds, latQPS)
			if err != nil {
				return nil, fmt.Errorf("%s paced: %w", t.name, err)
			}
			p50[t.name] = append(p50[t.name], lat.p50)
			p99[t.name] = append(p99[t.name], lat.p99)
			log.Info("dns", "round", r+1, "target", t.name, "qps", int(res.qps), "lost", res.lost,
				"p50-ms", lat.p50, "p99-ms", lat.p99, "paced-lost", lat.lost)
		}
	}
	return dnsRows(cfg, qps, lost, p50, p99, prop), nil
}

func dnsRows(cfg Config, qps map[string][]float64, lost map[string]int, p50, p99 map[string][]float64, prop []float64) []Row {
	zq, nq := median(qps["znet resolver"]), median(qps["NSD"])
	how := fmt.Sprintf("dnsperf -l %d unpaced (-c 2 -q 100), A queries over %d names, from a workload; median of %d rounds, alternating; %d queries lost in all",
		dnsSeconds, dnsNames, cfg.Rounds, lost["znet resolver"])
	push := "names pushed to the resolver through its control socket (dnsresolver.Push), not attached"
	ratio := zq / nq
	lat := fmt.Sprintf("dnsperf -Q %d -l %d, percentiles of the per-query latencies (-v), median of %d rounds", latQPS, latSeconds, cfg.Rounds)
	return []Row{
		{Part: "dns", Figure: fmt.Sprintf("resolver qps, %d names", dnsNames), Value: zq, Unit: "qps", Goal: "≥ 80,000 qps",
			Verdict: verdictOf(zq, zq >= 80000 && lost["znet resolver"] == 0), Note: how + "; " + push},
		{Part: "dns", Figure: "NSD qps, same zone", Value: nq, Unit: "qps",
			Note: fmt.Sprintf("nsd -d, server-count 2, in the resolver's namespace on a second bridge address; %d queries lost in all", lost["NSD"])},
		{Part: "dns", Figure: "resolver ÷ NSD qps", Value: ratio, Unit: "×", Goal: "≥ 0.8×", Verdict: verdictOf(ratio, ratio >= 0.8)},
		{Part: "dns", Figure: fmt.Sprintf("resolver latency p50 at %d qps", latQPS), Value: median(p50["znet resolver"]), Unit: "ms", Note: lat},
		{Part: "dns", Figure: fmt.Sprintf("resolver latency p99 at %d qps", latQPS), Value: median(p99["znet resolver"]), Unit: "ms",
			Goal: "≤ 1 ms", Verdict: verdictOf(median(p99["znet resolver"]), median(p99["znet resolver"]) <= 1), Note: lat},
		{Part: "dns", Figure: fmt.Sprintf("NSD latency p50 at %d qps", latQPS), Value: median(p50["NSD"]), Unit: "ms", Note: lat},
		{Part: "dns", Figure: fmt.Sprintf("NSD latency p99 at %d qps", latQPS), Value: median(p99["NSD"]), Unit: "ms", Note: lat},
		{Part: "dns", Figure: fmt.Sprintf("new name propagated to %d nodes", dnsNodes), Value: median(prop), Unit: "ms",
			Note: fmt.Sprintf("%d-node lab; from the attach call on node 1 until a query from every other node's workload (a UDP socket in its namespace, every 5 ms) answers it; median of %d", dnsNodes, len(prop))},
	}
}

// propagation times, cfg.Rounds times on a dnsNodes-node lab, a new name
// attached on node 1 until every other node answers it.
func propagation(ctx context.Context, cfg Config, log *slog.Logger) ([]float64, error) {
	l, down, err := upLab(ctx, cfg.Znetd, dnsNodes, log, "DNS propagation")
	defer down()
	if err != nil {
		return nil, err
	}
	ws, err := dnsLab(ctx, l)
	if err != nil {
		return nil, err
	}
	return propagations(ctx, l, ws, max(1, cfg.Rounds), log.With("part", "dns"))
}

// propagations runs propagate rounds times and returns the milliseconds
// of each.
func propagations(ctx context.Context, l *lab.Lab, ws []dnsWorkload, rounds int, log *slog.Logger) ([]float64, error) {
	var prop []float64
	for r := range rounds {
		ms, err := propagate(ctx, l, ws, r)
		if err != nil {
			return nil, err
		}
		log.Info("name propagated", "ms", ms)
		prop = append(prop, ms)
	}
	return prop, nil
}

// dnsLab deploys network "dns" over every node of l and attaches workload
// w<i> on node i.
func dnsLab(ctx context.Context, l *lab.Lab) ([]dnsWorkload, error) {
	d := &deploy.Deployment{Name: dnsNetwork, IPRange: netip.MustParsePrefix("10.41.0.0/16")}
	if err := deployOver(ctx, l, l.Nodes, d); err != nil {
		return nil, err
	}
	return attachAll(ctx, l)
}

// attachAll attaches workload w<i> on node i of network dnsNetwork.
func attachAll(ctx context.Context, l *lab.Lab) ([]dnsWorkload, error) {
	var ws []dnsWorkload
	for i, n := range l.Nodes {
		ns := l.WorkloadNS(i + 1)
		path, err := l.AddWorkloadNS(ns)
		if err != nil {
			return nil, err
		}
		a, err := n.Client().Attach(ctx, dnsNetwork, api.AttachRequest{Name: fmt.Sprintf("w%d", i+1), NetNS: path})
		if err != nil {
			return nil, fmt.Errorf("attach on %s: %w", n.ID, err)
		}
		ws = append(ws, dnsWorkload{ns: ns, resolver: a.Gateway})
	}
	return ws, nil
}

// propagate attaches a new workload on node 1 and returns the milliseconds
// from the attach call until every other node's workload resolves its name.
func propagate(ctx context.Context, l *lab.Lab, ws []dnsWorkload, round int) (float64, error) {
	ns := l.WorkloadNS(100 + round)
	path, err := l.AddWorkloadNS(ns)
	if err != nil {
		return 0, err
	}
	name := fmt.Sprintf("new%d", round)
	fqdn := name + "." + dnsNetwork + ".internal"
	start := time.Now()
	a, err := l.Nodes[0].Client().Attach(ctx, dnsNetwork, api.AttachRequest{Name: name, NetNS: path})
	if err != nil {
		return 0, fmt.Errorf("attach %s: %w", name, err)
	}
	want := a.IPv4.String()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(ws))
	for i, w := range ws[1:] {
		wg.Go(func() {
			if err := waitName(pctx, w, fqdn, want); err != nil {
				errs[i] = fmt.Errorf("%s not resolved in %s within 30 s: %w", fqdn, w.ns, err)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return float64(took.Microseconds()) / 1000, nil
}

// waitName asks w's resolver, from inside w's namespace, for fqdn's A
// record every 5 ms until the answer is want alone or ctx ends. It uses
// one UDP socket made in the namespace, not dig: at 100 nodes, 99 dig
// processes every few milliseconds would be most of the load the figure
// measures.
func waitName(ctx context.Context, w dnsWorkload, fqdn, want string) error {
	h, err := namespaces.Open(namespaces.Path(w.ns))
	if err != nil {
		return err
	}
	defer func() { _ = h.Close() }()
	var conn net.Conn
	err = namespaces.Do(h, func() error {
		var err error
		conn, err = net.Dial("udp", netip.AddrPortFrom(w.resolver, 53).String())
		return err
	})
	if err != nil {
		return err
	}
	co := &dns.Conn{Conn: conn}
	defer func() { _ = co.Close() }()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(fqdn), dns.TypeA)
	for {
		q.Id = dns.Id()
		if answered(co, q, want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// answered sends q over co and reports whether the answer (waited for up
// to a second) is one A record with address want.
func answered(co *dns.Conn, q *dns.Msg, want string) bool {
	_ = co.SetDeadline(time.Now().Add(time.Second))
	if co.WriteMsg(q) != nil {
		return false
	}
	for {
		resp, err := co.ReadMsg()
		if err != nil {
			return false
		}
		if resp.Id != q.Id { // the late answer to an earlier query
			continue
		}
		if len(resp.Answer) != 1 {
			return false
		}
		a, ok := resp.Answer[0].(*dns.A)
		return ok && a.A.String() == want
	}
}

// pushNames hands node 1's resolver the config znetd would give it with
// dnsNames workloads, and returns a dnsperf query file and an NSD zone
// file of the same names.
func pushNames(ctx context.Context, l *lab.Lab) (queries, zone string, err error) {
	n := l.Nodes[0]
	det, err := n.Client().Network(ctx, dnsNetwork)
	if err != nil {
		return "", "", err
	}
	s, st := det.Spec, det.Status
	cfg := dnsresolver.Config{Network: s.Name, NodeID: n.ID, Gateway4: st.Gateway, Gateway6: st.Gateway6,
		IPRange: s.IPRange, IPv6Range: s.IPv6Range}
	for _, node := range s.Nodes {
		if node.ID == n.ID {
			continue
		}
		sub, err := ipam.NodeSubnets(s.IPRange, s.IPv6Range, node.Subnet)
		if err != nil {
			return "", "", err
		}
		cfg.Members = append(cfg.Members, dnsresolver.Member{ID: node.ID, Gateway4: sub.Gateway4, Gateway6: sub.Gateway6})
	}
	var q, z strings.Builder
	origin := s.Name + ".internal."
	fmt.Fprintf(&z, "$ORIGIN %s\n$TTL 1\n@ IN SOA ns hostmaster 1 3600 600 86400 1\n@ IN NS ns\nns IN A %s\n", origin, nsdGlue)
	for i := range dnsNames {
		name := fmt.Sprintf("app%d", i)
		ip := netip.AddrFrom4([4]byte{10, 41, byte(200 + i/250), byte(1 + i%250)})
		cfg.Local = append(cfg.Local, dnsresolver.Record{Name: name, IPv4: ip})
		fmt.Fprintf(&q, "%s.%s A\n", name, origin)
		fmt.Fprintf(&z, "%s IN A %s\n", name, ip)
	}
	sock := filepath.Join(n.StateDir, "run", st.Interface+".dns")
	if err := dnsresolver.Push(ctx, sock, cfg); err != nil {
		return "", "", err
	}
	return q.String(), z.String(), nil
}

// startNSD runs NSD serving zone in the same namespace as the resolver it
// is compared with (node 1's network namespace), on a second address of the
// network's bridge, so that queries from workload ws take the same path
// (veth, bridge, nftables, conntrack) to both; it waits until NSD answers
// and returns the address.
func startNSD(ctx context.Context, l *lab.Lab, ws, zone string, p *procs) (string, error) {
	n := l.Nodes[0]
	det, err := n.Client().Network(ctx, dnsNetwork)
	if err != nil {
		return "", err
	}
	sub := det.Status.Subnet.Masked()
	if !sub.Addr().Is4() || sub.Bits() > 30 {
		return "", fmt.Errorf("node 1's subnet %s has no room for NSD", sub)
	}
	// The subnet's last host address: workloads get the lowest ones first.
	last := sub.Addr().As4()
	host := uint32(1)<<(32-sub.Bits()) - 2
	v := uint32(last[0])<<24 | uint32(last[1])<<16 | uint32(last[2])<<8 | uint32(last[3])
	v += host
	nsdAddr := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
	ns := namespaces.Name(n.ID, dnsNetwork)
	if err := ipIn(ns, "addr", "add", fmt.Sprintf("%s/%d", nsdAddr, sub.Bits()), "dev", "znbr"); err != nil {
		return "", err
	}
	zone = strings.Replace(zone, nsdGlue, nsdAddr, 1)
	dir := filepath.Join(l.Dir, "nsd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	zoneName := dnsNetwork + ".internal"
	conf := fmt.Sprintf(`server:
  ip-address: %s
  port: 53
  server-count: 2
  username: ""
  chroot: ""
  zonesdir: %q
  database: ""
  pidfile: %q
  xfrdfile: %q
  xfrdir: %q
  zonelistfile: %q
  logfile: %q
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: %q
  zonefile: %q
`, nsdAddr, dir, filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "xfrd.state"), dir,
		filepath.Join(dir, "zone.list"), filepath.Join(dir, "nsd.log"), zoneName, zoneName+".zone")
	if err := os.WriteFile(filepath.Join(dir, zoneName+".zone"), []byte(zone), 0o644); err != nil {
		return "", err
	}
	confPath := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return "", err
	}
	cmd := exec.Command("ip", "netns", "exec", ns, "nsd", "-d", "-c", confPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	p.add(cmd)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := inNS(ctx, ws, "dig", "+short", "+time=1", "+tries=1", "@"+nsdAddr, "app0."+zoneName, "A")
		if strings.TrimSpace(out) == "10.41.200.1" {
			return nsdAddr, nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "nsd.log"))
			return "", fmt.Errorf("NSD does not answer: %s", strings.TrimSpace(string(log)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
