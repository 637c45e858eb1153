package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/znet/znet/api"
	"github.com/znet/znet/deploy"
	"github.com/znet/znet/lab"
)

// znetPair deploys network "bench" over the lab's first two nodes and
// attaches one workload on each; it returns the znet contender.
func znetPair(ctx context.Context, l *lab.Lab) (contender, error) {
	d := &deploy.Deployment{Name: "bench", IPRange: netip.MustParsePrefix("10.40.0.0/16")}
	if err := deployOver(ctx, l, l.Nodes[:2], d); err != nil {
		return contender{}, err
	}
	var c contender
	c.name = "znet"
	for i, n := range l.Nodes[:2] {
		ns := l.WorkloadNS(i + 1)
		path, err := l.AddWorkloadNS(ns)
		if err != nil {
			return c, err
		}
		a, err := n.Client().Attach(ctx, "bench", api.AttachRequest{Name: fmt.Sprintf("w%d", i+1), NetNS: path})
		if err != nil {
			return c, fmt.Errorf("attach on %s: %w", n.ID, err)
		}
		if a.MTU <= 0 {
			return c, fmt.Errorf("attach on %s: no MTU in the answer", n.ID)
		}
		c.mtu = a.MTU
		det, err := n.Client().Network(ctx, "bench")
		if err != nil || det.Status.PID == 0 {
			return c, fmt.Errorf("data plane of bench on %s: no pid (%v)", n.ID, err)
		}
		c.pids = append(c.pids, det.Status.PID)
		if i == 0 {
			c.cli = ns
		} else {
			c.srv, c.addr = ns, a.IPv4.String()
		}
	}
	return c, nil
}

// dataplane measures throughput, RTT and CPU per GB of every contender in
// rounds (see doc.go for the method), each round on a lab of its own. In
// each round znet and the bare library run in interleaved segments (blocks
// ABBA, BAAB..., which goes first alternates) and their ratio is taken
// within the round, from the sums of their segments, so that the load
// other work puts on the machine, which comes and goes, weighs on both
// sides of a ratio alike; the load average is recorded with each round.
// The other contenders (Debian's wireguard-go, a raw veth) follow, one run
// each, as references.
func dataplane(ctx context.Context, cfg Config, log *slog.Logger) ([]Row, error) {
	m := newMeasurements()
	var all []contender
	for r := range cfg.PairRounds {
		var err error
		if all, err = dataplaneRound(ctx, cfg, log, r, &m); err != nil {
			return nil, fmt.Errorf("round %d: %w", r+1, err)
		}
	}
	return dataplaneRows(cfg, all, m), nil
}

// dataplaneRound runs round r on a lab of its own, with data planes and
// bare contenders started for it: a data plane's own start (where its
// threads and memory land) moved all the rounds of a lab alike (doc.go),
// so rounds on one lab are not independent samples. It returns the
// round's contenders.
func dataplaneRound(ctx context.Context, cfg Config, log *slog.Logger, r int, m *measurements) ([]contender, error) {
	l, down, err := upLab(ctx, cfg.Znetd, 2, log, "data-plane")
	defer down()
	if err != nil {
		return nil, err
	}
	var p procs
	defer p.stop() // before down: they run in the lab's namespaces
	z, err := znetPair(ctx, l)
	if err != nil {
		return nil, err
	}
	bare, err := barePair(ctx, l, cfg.Self, z.mtu, &p)
	if err != nil {
		return nil, err
	}
	all := append([]contender{z}, bare...)
	for _, c := range all { // handshakes before the first measurement
		if err := warmUp(ctx, c); err != nil {
			return nil, fmt.Errorf("%s does not pass traffic: %w", c.name, err)
		}
	}
	for _, c := range all {
		for _, pid := range c.pids {
			if err := setAutogroupNice(pid, cfg.Nice); err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
		}
	}
	m.noteScheduling(sameScheduling(all))
	log.Info("data plane scheduling", "round", r+1, "pair", m.sched)
	warmUpRuns(ctx, log, all, cfg)
	for _, run := range roundPlan(all, r, cfg.Seconds) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m.measure(ctx, log, run, r, cfg.Nice)
	}
	m.closeRound(log, r)
	return all, nil
}

// iperf runs one iperf3 TCP stream of secs seconds over c and returns
// what it carried and the CPU iperf3's client and server used. Every
// contender gets the same iperf3 command: only c's namespaces and address
// differ. Client and server run in sessions of their own with autogroup
// nice nice.
func iperf(ctx context.Context, c contender, secs, nice int) (iperfRun, error) {
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", c.srv, "iperf3", "-s", "-1", "-B", c.addr)
	var srvOut strings.Builder
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := startNiced(srv, nice); err != nil {
		return iperfRun{}, err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := inNSNiced(ctx, nice, c.cli, "iperf3", "-c", c.addr, "-t", strconv.Itoa(secs), "-J")
		if err == nil {
			// iperf3 -J may exit 0 with the error in its JSON; a refused
			// connection (the server is not listening yet) is retried.
			var run iperfRun
			if run, err = parseIperf(out); err == nil {
				return run, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = srv.Process.Kill()
			_ = srv.Wait()
			return iperfRun{}, fmt.Errorf("%w (server: %s)", err, strings.TrimSpace(srvOut.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// iperfRun is what one iperf3 run received, over how long, and the CPU
// seconds its client and server used (user and system, which include the
// kernel's work on their packets: for a sender in a workload namespace,
// its veth, the bridge and the forwarding up to the tunnel device).
type iperfRun struct {
	bytes, secs, cpu float64
}

// gbps is the run's received Gbit/s.
func (r iperfRun) gbps() float64 { return r.bytes * 8 / r.secs / 1e9 }

// parseIperf returns the received bytes and seconds and the CPU seconds of
// iperf3's JSON output (client and server: iperf3 reports each as a
// percentage of the run's length).
func parseIperf(out string) (iperfRun, error) {
	var res struct {
		End struct {
			SumReceived struct {
				Bytes   float64 `json:"bytes"`
				Seconds float64 `json:"seconds"`
			} `json:"sum_received"`
			CPU struct {
				Host   float64 `json:"host_total"`
				Remote float64 `json:"remote_total"`
			} `json:"cpu_utilization_percent"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return iperfRun{}, fmt.Errorf("reading iperf3 output: %w", err)
	}
	if res.Error != "" {
		return iperfRun{}, errors.New(res.Error)
	}
	got := res.End.SumReceived
	if got.Bytes <= 0 || got.Seconds <= 0 {
		return iperfRun{}, errors.New("iperf3 received nothing")
	}
	return iperfRun{bytes: got.Bytes, secs: got.Seconds, cpu: (res.End.CPU.Host + res.End.CPU.Remote) / 100 * got.Seconds}, nil
}

// pingRTT pings over c count times, 10 ms apart, and returns the RTTs
// (ping prints each reply's, for the median).
// ping runs in a session of its own with autogroup nice nice.
func pingRTT(ctx context.Context, c contender, count, nice int) (rtt, error) {
	out, err := inNSNiced(ctx, nice, c.cli, "ping", "-i", "0.01", "-W", "1", "-c", strconv.Itoa(count), c.addr)
	if err != nil && !strings.Contains(out, "rtt") {
		return rtt{}, err
	}
	return parsePing(out)
}

// floodRTT floods c with count pings (ping -f: the next one leaves as
// the previous reply arrives, so no thread on the path waits to be woken)
// and returns their average RTT in ms. ping runs in a session of its own
// with autogroup nice nice.
func floodRTT(ctx context.Context, c contender, count, nice int) (float64, error) {
	out, err := inNSNiced(ctx, nice, c.cli, "ping", "-f", "-q", "-W", "1", "-c", strconv.Itoa(count), c.addr)
	if err != nil && !strings.Contains(out, "rtt") {
		return math.NaN(), err
	}
	return parseFlood(out)
}

// parseFlood returns the average RTT of a ping flood's summary, in ms.
func parseFlood(out string) (float64, error) {
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		return math.NaN(), fmt.Errorf("no RTT summary in ping output %q", out)
	}
	return strconv.ParseFloat(m[2], 64)
}

// warmUp pings over c until a ping passes (the first packets wait for a
// handshake), for up to 10 s.
func warmUp(ctx context.Context, c contender) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := inNS(ctx, c.cli, "ping", "-q", "-c", "1", "-W", "1", c.addr)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// warmUpRuns runs one uncounted iperf3 segment over every contender, so
// that the first counted one finds their data planes past their start: in
// two runs here, znet's first segment, 1-2 s after its data planes
// started, cost 1.5-2× the CPU per GB of its later ones. (znet's data
// planes hold their garbage collector for 10 s after the start,
// internal/idlemem; whether that is the cause was not measured.)
func warmUpRuns(ctx context.Context, log *slog.Logger, all []contender, cfg Config) {
	for _, c := range all {
		before, _ := cpuOf(c.pids)
		res, err := iperf(ctx, c, max(1, cfg.Seconds/2), cfg.Nice)
		after, _ := cpuOf(c.pids)
		log.Info("data plane warm-up, not counted", "contender", c.name, "gbit/s", fmt.Sprintf("%.2f", res.gbps()),
			"cpu-s-procs", fmt.Sprintf("%.2f", after-before), "err", err)
	}
}

var (
	pingSummary = regexp.MustCompile(`= ([0-9.]+)/([0-9.]+)/([0-9.]+)/([0-9.]+) ms`)
	pingReply   = regexp.MustCompile(`time=([0-9.]+) ms`)
)

// rtt is the minimum, median and average of a ping run, in ms. The
// minimum is the path's own length, which the load other work puts on the
// machine touches least; the median is the typical packet's, which a few
// replies delayed by tens of milliseconds (a data plane waiting for a CPU
// on a loaded machine) do not move; the average is what a workload sees,
// those delays included.
type rtt struct{ min, med, avg float64 }

// parsePing returns the RTTs of ping's output: minimum and average from
// its summary, the median from its replies' lines.
func parsePing(out string) (rtt, error) {
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		return rtt{math.NaN(), math.NaN(), math.NaN()}, fmt.Errorf("no RTT summary in ping output %q", out)
	}
	lo, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return rtt{}, err
	}
	avg, err := strconv.ParseFloat(m[2], 64)
	if err != nil {
		return rtt{}, err
	}
	var times []float64
	for _, r := range pingReply.FindAllStringSubmatch(out, -1) {
		v, err := strconv.ParseFloat(r[1], 64)
		if err != nil {
			return rtt{}, err
		}
		times = append(times, v)
	}
	if len(times) == 0 {
		return rtt{}, fmt.Errorf("no reply times in ping output %q", out)
	}
	return rtt{min: lo, med: median(times), avg: avg}, nil
}
