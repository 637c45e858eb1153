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
	"slices"
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
		if i == 0 {
			c.cli = ns
		} else {
			c.srv, c.addr = ns, a.IPv4.String()
		}
	}
	return c, nil
}

// dataplane measures throughput and RTT of every contender in rounds. In
// each round znet and the bare library run back to back (which goes first
// alternates) and their ratio is taken within the round, so that the load
// other work puts on the machine, which drifts over minutes, weighs on both
// sides of a ratio alike; the load average is recorded with each round.
// The other contenders (Debian's wireguard-go, a raw veth) follow as
// references.
func dataplane(ctx context.Context, cfg Config, log *slog.Logger) ([]Row, error) {
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
	m := measurements{gbps: map[string][]float64{}, rtt: map[string][]float64{}}
	for r := range cfg.PairRounds {
		order := roundOrder(all, r)
		for _, c := range order {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			m.measure(ctx, cfg, log, c, r)
		}
		m.closeRound(log, r)
	}
	return dataplaneRows(cfg, all, m), nil
}

// roundOrder is the order of round r: znet and the bare library first,
// back to back, znet first in even rounds; then the references.
func roundOrder(all []contender, r int) []contender {
	var pair, rest []contender
	for _, c := range all {
		if c.name == "znet" || c.name == bareName {
			pair = append(pair, c)
		} else {
			rest = append(rest, c)
		}
	}
	if r%2 == 1 {
		slices.Reverse(pair)
	}
	return append(pair, rest...)
}

// measurements are the figures of the data-plane rounds so far.
type measurements struct {
	gbps, rtt map[string][]float64 // contender -> one value per good run
	// ratio and extra are znet ÷ bare throughput and znet − bare RTT of
	// each round in which both ran; load the load average of each round.
	// extraMin is znet − bare of the minimum RTTs.
	ratio, extra, extraMin []float64
	load                   []string
	// this round's values (NaN: failed)
	roundGbps map[string]float64
	roundRTT  map[string]rtt
}

// measure runs iperf3 and ping over c; a failed run is logged and left out
// (the row's note counts the runs that made it).
func (m *measurements) measure(ctx context.Context, cfg Config, log *slog.Logger, c contender, r int) {
	if m.roundGbps == nil {
		m.roundGbps, m.roundRTT = map[string]float64{}, map[string]rtt{}
	}
	g, err := iperf(ctx, c, cfg.Seconds)
	if err != nil {
		log.Warn("iperf3 failed", "contender", c.name, "round", r+1, "err", err)
		g = math.NaN()
	} else {
		m.gbps[c.name] = append(m.gbps[c.name], g)
	}
	ms, err := pingRTT(ctx, c, 200)
	if err != nil {
		log.Warn("ping failed", "contender", c.name, "round", r+1, "err", err)
		ms = rtt{math.NaN(), math.NaN()}
	} else {
		m.rtt[c.name] = append(m.rtt[c.name], ms.avg)
	}
	m.roundGbps[c.name], m.roundRTT[c.name] = g, ms
	log.Info("data plane", "round", r+1, "contender", c.name, "gbit/s", fmt.Sprintf("%.2f", g), "rtt-ms", ms.avg, "rtt-min-ms", ms.min)
}

// closeRound takes round r's pair figures and its load average.
func (m *measurements) closeRound(log *slog.Logger, r int) {
	load := loadAvg()
	m.load = append(m.load, load)
	zg, bg := m.roundGbps["znet"], m.roundGbps[bareName]
	if !math.IsNaN(zg) && !math.IsNaN(bg) && bg > 0 {
		m.ratio = append(m.ratio, zg/bg)
	}
	zr, zok := m.roundRTT["znet"]
	br, bok := m.roundRTT[bareName]
	if zok && bok && !math.IsNaN(zr.avg) && !math.IsNaN(br.avg) {
		m.extra = append(m.extra, zr.avg-br.avg)
		m.extraMin = append(m.extraMin, zr.min-br.min)
	}
	log.Info("data plane pair", "round", r+1, "znet÷bare", fmt.Sprintf("%.3f", zg/bg), "rtt-extra-ms", fmt.Sprintf("%.3f", zr.avg-br.avg),
		"rtt-min-extra-ms", fmt.Sprintf("%.3f", zr.min-br.min), "load", load)
	m.roundGbps, m.roundRTT = nil, nil
}

func dataplaneRows(cfg Config, all []contender, m measurements) []Row {
	var rows []Row
	for _, c := range all {
		note := fmt.Sprintf("iperf3 -t %d, one TCP stream, median of %d/%d runs", cfg.Seconds, len(m.gbps[c.name]), cfg.PairRounds)
		rows = append(rows, Row{Part: "dataplane", Figure: "throughput, " + c.name, Value: median(m.gbps[c.name]), Unit: "Gbit/s", Note: note})
	}
	perRound := func(vs []float64, unit string) string {
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = fmt.Sprintf("%.3f%s (load %s)", v, unit, m.load[min(i, len(m.load)-1)])
		}
		return strings.Join(parts, ", ")
	}
	ratio := median(m.ratio)
	worst := math.NaN()
	if len(m.ratio) > 0 {
		worst = slices.Min(m.ratio)
	}
	rows = append(rows,
		Row{Part: "dataplane", Figure: "znet ÷ " + bareName + " (throughput, per round)", Value: ratio, Unit: "×", Goal: "≥ 0.95× per round",
			Verdict: verdictOf(worst, worst >= 0.95), Note: fmt.Sprintf("median of %d rounds, lowest %.3f×; by round: %s", len(m.ratio), worst, perRound(m.ratio, "×"))})
	zt := median(m.gbps["znet"])
	for _, other := range []string{"Debian wireguard-go", "raw veth"} {
		rows = append(rows, Row{Part: "dataplane", Figure: "znet ÷ " + other + " (throughput)", Value: zt / median(m.gbps[other]), Unit: "×",
			Note: "medians over all rounds (references, not in the pairs)"})
	}
	for _, c := range all {
		pnote := fmt.Sprintf("ping -i 0.01 -c 200 average, median of %d/%d runs", len(m.rtt[c.name]), cfg.PairRounds)
		rows = append(rows, Row{Part: "dataplane", Figure: "RTT, " + c.name, Value: median(m.rtt[c.name]), Unit: "ms", Note: pnote})
	}
	extra := median(m.extra)
	rows = append(rows, Row{Part: "dataplane", Figure: "RTT znet − " + bareName + " (per round)", Value: extra, Unit: "ms",
		Goal: "≤ 0.05 ms", Verdict: verdictOf(extra, extra <= 0.05), Note: fmt.Sprintf("median of %d rounds; by round: %s", len(m.extra), perRound(m.extra, " ms"))},
		Row{Part: "dataplane", Figure: "RTT minimum znet − " + bareName + " (per round)", Value: median(m.extraMin), Unit: "ms",
			Note: fmt.Sprintf("the paths' own length, least touched by load; median of %d rounds; by round: %s", len(m.extraMin), perRound(m.extraMin, " ms"))})
	return rows
}

// iperf runs one iperf3 TCP stream of secs seconds over c and returns the
// received Gbit/s.
func iperf(ctx context.Context, c contender, secs int) (float64, error) {
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", c.srv, "iperf3", "-s", "-1", "-B", c.addr)
	var srvOut strings.Builder
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := inNS(ctx, c.cli, "iperf3", "-c", c.addr, "-t", strconv.Itoa(secs), "-J")
		if err == nil {
			// iperf3 -J may exit 0 with the error in its JSON; a refused
			// connection (the server is not listening yet) is retried.
			var g float64
			if g, err = parseIperf(out); err == nil {
				return g, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = srv.Process.Kill()
			_ = srv.Wait()
			return 0, fmt.Errorf("%w (server: %s)", err, strings.TrimSpace(srvOut.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// parseIperf returns the received Gbit/s of iperf3's JSON output.
func parseIperf(out string) (float64, error) {
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return 0, fmt.Errorf("reading iperf3 output: %w", err)
	}
	if res.Error != "" {
		return 0, errors.New(res.Error)
	}
	if res.End.SumReceived.BitsPerSecond <= 0 {
		return 0, errors.New("iperf3 received nothing")
	}
	return res.End.SumReceived.BitsPerSecond / 1e9, nil
}

// pingRTT pings over c count times, 10 ms apart, and returns the RTTs.
func pingRTT(ctx context.Context, c contender, count int) (rtt, error) {
	out, err := inNS(ctx, c.cli, "ping", "-q", "-i", "0.01", "-W", "1", "-c", strconv.Itoa(count), c.addr)
	if err != nil && !strings.Contains(out, "rtt") {
		return rtt{}, err
	}
	return parsePing(out)
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

var pingSummary = regexp.MustCompile(`= ([0-9.]+)/([0-9.]+)/([0-9.]+)/([0-9.]+) ms`)

// rtt is the minimum and average of a ping run, in ms. The minimum is the
// path's own length, which the load other work puts on the machine
// touches least; the average is what a workload sees.
type rtt struct{ min, avg float64 }

// parsePing returns the RTTs of ping's summary.
func parsePing(out string) (rtt, error) {
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		return rtt{math.NaN(), math.NaN()}, fmt.Errorf("no RTT summary in ping output %q", out)
	}
	lo, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return rtt{}, err
	}
	avg, err := strconv.ParseFloat(m[2], 64)
	return rtt{lo, avg}, err
}
