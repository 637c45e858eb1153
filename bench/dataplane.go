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
		if i == 0 {
			c.cli = ns
		} else {
			c.srv, c.addr = ns, a.IPv4.String()
		}
	}
	return c, nil
}

// dataplane measures throughput and RTT of every contender, alternating.
func dataplane(ctx context.Context, cfg Config, log *slog.Logger) ([]Row, error) {
	l, down, err := upLab(ctx, cfg.Znetd, 2)
	var p procs
	defer func() {
		p.stop()
		if derr := down(); derr != nil {
			log.Error("removing the data-plane lab", "err", derr)
		}
	}()
	if err != nil {
		return nil, err
	}
	z, err := znetPair(ctx, l)
	if err != nil {
		return nil, err
	}
	bare, err := barePair(ctx, l, cfg.Self, &p)
	if err != nil {
		return nil, err
	}
	all := append([]contender{z}, bare...)
	for _, c := range all { // handshakes before the first measurement
		if err := warmUp(ctx, c); err != nil {
			return nil, fmt.Errorf("%s does not pass traffic: %w", c.name, err)
		}
	}
	gbps := map[string][]float64{}
	rtt := map[string][]float64{}
	for r := range cfg.Rounds {
		for i := range all {
			c := all[(i+r)%len(all)]
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// A failed run is logged and left out of the median (the
			// row's note counts the runs that made it).
			g, err := iperf(ctx, c, cfg.Seconds)
			if err != nil {
				log.Warn("iperf3 failed", "contender", c.name, "round", r+1, "err", err)
			} else {
				gbps[c.name] = append(gbps[c.name], g)
			}
			ms, err := pingRTT(ctx, c, 200)
			if err != nil {
				log.Warn("ping failed", "contender", c.name, "round", r+1, "err", err)
			} else {
				rtt[c.name] = append(rtt[c.name], ms)
			}
			log.Info("data plane", "round", r+1, "contender", c.name, "gbit/s", fmt.Sprintf("%.2f", g), "rtt-ms", ms)
		}
	}
	return dataplaneRows(cfg, all, gbps, rtt), nil
}

func dataplaneRows(cfg Config, all []contender, gbps, rtt map[string][]float64) []Row {
	var rows []Row
	for _, c := range all {
		note := fmt.Sprintf("iperf3 -t %d, one TCP stream, median of %d/%d runs", cfg.Seconds, len(gbps[c.name]), cfg.Rounds)
		rows = append(rows, Row{Part: "dataplane", Figure: "throughput, " + c.name, Value: median(gbps[c.name]), Unit: "Gbit/s", Note: note})
	}
	zt := median(gbps["znet"])
	ratio := func(other, goal string, min float64) Row {
		v := zt / median(gbps[other])
		r := Row{Part: "dataplane", Figure: "znet ÷ " + other + " (throughput)", Value: v, Unit: "×", Goal: goal}
		if goal != "" {
			r.Verdict = verdictOf(v, v >= min)
		}
		return r
	}
	rows = append(rows,
		ratio("bare wireguard-go library", "≥ 0.9×", 0.9),
		ratio("Debian wireguard-go", "≥ 4×", 4),
		ratio("raw veth", "", 0))
	for _, c := range all {
		pnote := fmt.Sprintf("ping -i 0.01 -c 200 average, median of %d/%d runs", len(rtt[c.name]), cfg.Rounds)
		rows = append(rows, Row{Part: "dataplane", Figure: "RTT, " + c.name, Value: median(rtt[c.name]), Unit: "ms", Note: pnote})
	}
	extra := median(rtt["znet"]) - median(rtt["bare wireguard-go library"])
	rows = append(rows, Row{Part: "dataplane", Figure: "RTT znet − bare wireguard-go library", Value: extra, Unit: "ms",
		Goal: "≤ 0.1 ms", Verdict: verdictOf(extra, extra <= 0.1)})
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

// pingRTT pings over c count times, 10 ms apart, and returns the average
// RTT in milliseconds.
func pingRTT(ctx context.Context, c contender, count int) (float64, error) {
	out, err := inNS(ctx, c.cli, "ping", "-q", "-i", "0.01", "-W", "1", "-c", strconv.Itoa(count), c.addr)
	if err != nil && !strings.Contains(out, "rtt") {
		return 0, err
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

// parsePing returns the average RTT (ms) of ping's summary.
func parsePing(out string) (float64, error) {
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		return math.NaN(), fmt.Errorf("no RTT summary in ping output %q", out)
	}
	return strconv.ParseFloat(m[2], 64)
}
