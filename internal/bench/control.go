package bench

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/znet/znet/api"
	"github.com/znet/znet/spec"
)

const (
	applies  = 50
	attaches = 100
	idleNets = 100
)

// control measures network apply, workload attach and the resident memory
// of idle networks on a one-node lab.
func control(ctx context.Context, cfg Config, log *slog.Logger) ([]Row, error) {
	l, down, err := upLab(ctx, cfg.Znetd, 1, log, "control-plane")
	defer down()
	if err != nil {
		return nil, err
	}
	node := l.Nodes[0]
	c := node.Client()
	newSpec := func(i int) *spec.Spec {
		return &spec.Spec{Name: fmt.Sprintf("b%d", i), Generation: 1, IPRange: netip.MustParsePrefix("10.20.0.0/16"),
			Nodes: []spec.Node{{ID: node.ID, Subnet: netip.MustParsePrefix("10.20.1.0/24")}}}
	}
	var applyTook []time.Duration
	for i := range applies {
		start := time.Now()
		if _, err := c.Apply(ctx, newSpec(i)); err != nil {
			return nil, fmt.Errorf("apply b%d: %w", i, err)
		}
		applyTook = append(applyTook, time.Since(start))
	}
	log.Info("control plane", "applies", applies, "p50-ms", percentile(applyTook, 50))
	var attachTook []time.Duration
	for i := range attaches {
		path, err := l.AddWorkloadNS(l.WorkloadNS(i + 1))
		if err != nil {
			return nil, err
		}
		start := time.Now()
		nw := fmt.Sprintf("b%d", i%applies)
		if _, err := c.Attach(ctx, nw, api.AttachRequest{Name: fmt.Sprintf("w%d", i+1), NetNS: path}); err != nil {
			return nil, fmt.Errorf("attach w%d: %w", i+1, err)
		}
		attachTook = append(attachTook, time.Since(start))
	}
	log.Info("control plane", "attaches", attaches, "p50-ms", percentile(attachTook, 50))
	start := time.Now()
	for i := applies; i < idleNets; i++ {
		if _, err := c.Apply(ctx, newSpec(i)); err != nil {
			return nil, fmt.Errorf("apply b%d: %w", i, err)
		}
	}
	more := time.Since(start)
	time.Sleep(2 * time.Second) // let the data planes settle
	rss, n, err := memOf(l.Dir, "/status", "VmRSS:")
	if err != nil {
		return nil, err
	}
	pss, _, err := memOf(l.Dir, "/smaps_rollup", "Pss:")
	if err != nil {
		return nil, err
	}
	perNet := float64(rss) / 1024 / idleNets
	pssPerNet := float64(pss) / 1024 / idleNets
	log.Info("control plane", "processes", n, "rss-mib", float64(rss)/1024)
	apN := fmt.Sprintf("over %d new one-node networks", applies)
	atN := fmt.Sprintf("over %d workloads, %d per network (one network refuses its 59th: firewall netlink message too long)", attaches, attaches/applies)
	return []Row{
		{Part: "control", Figure: "network apply p50", Value: percentile(applyTook, 50), Unit: "ms", Goal: "≤ 50 ms",
			Verdict: verdict(percentile(applyTook, 50) <= 50), Note: apN},
		{Part: "control", Figure: "network apply p99", Value: percentile(applyTook, 99), Unit: "ms", Note: apN},
		{Part: "control", Figure: "workload attach p50", Value: percentile(attachTook, 50), Unit: "ms", Goal: "≤ 20 ms",
			Verdict: verdict(percentile(attachTook, 50) <= 20), Note: atN},
		{Part: "control", Figure: "workload attach p99", Value: percentile(attachTook, 99), Unit: "ms", Note: atN},
		{Part: "control", Figure: fmt.Sprintf("applying networks %d..%d", applies+1, idleNets), Value: more.Seconds(), Unit: "s",
			Note: "total, one after another"},
		{Part: "control", Figure: fmt.Sprintf("resident memory per idle network (%d networks)", idleNets), Value: perNet, Unit: "MiB",
			Goal: "≤ 10 MiB", Verdict: verdict(perNet <= 10),
			Note: fmt.Sprintf("VmRSS of znetd and its %d data planes, summed, ÷ %d (counts the shared znetd binary once per process)", n-1, idleNets)},
		{Part: "control", Figure: fmt.Sprintf("proportional memory (Pss) per idle network (%d networks)", idleNets), Value: pssPerNet, Unit: "MiB",
			Goal: "≤ 10 MiB", Verdict: verdict(pssPerNet <= 10),
			Note: "Pss of the same processes: shared pages split between them"},
	}, nil
}

// memOf sums the field (KiB) of /proc/PID/file over every znetd process
// whose command line names dir (the lab's znetd and its data planes) and
// returns it with their count.
func memOf(dir, file, field string) (kib int64, n int, err error) {
	for _, p := range processesMatching(dir) {
		pid, _, _ := strings.Cut(p, ":")
		if !strings.Contains(p, "znetd") {
			continue
		}
		v, err := procField(filepath.Join("/proc", pid)+file, field)
		if err != nil {
			continue // gone meanwhile
		}
		kib += v
		n++
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("no znetd process names %s", dir)
	}
	return kib, n, nil
}

// procField returns the value in KiB of the line starting with field in a
// /proc file such as status or smaps_rollup.
func procField(path, field string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in %s", field, path)
}
