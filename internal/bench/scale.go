package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/znet/znet/api"
	"github.com/znet/znet/lab"
	"github.com/znet/znet/spec"
)

// DefaultNetworks is how many networks the scale part puts on one node
// (issue 17: a busy node hosts hundreds of deployments).
const DefaultNetworks = 1000

// scaleSample is how many of the last networks applied give the "apply of
// network N" figure, and how often list and status are timed.
const scaleSample = 10

// scalePart applies cfg.Networks one-node networks on a one-node lab and
// times, at that count: applying the last networks, `network list`,
// `status` of all, a restart of znetd until every data plane is adopted;
// and the memory of the data planes.
func scalePart(ctx context.Context, cfg Config, log *slog.Logger) ([]Row, error) {
	n := cfg.Networks
	if n < scaleSample {
		return nil, fmt.Errorf("--networks %d: want at least %d", n, scaleSample)
	}
	l, down, err := upLab(ctx, cfg.Znetd, 1, log, "scale")
	defer down()
	if err != nil {
		return nil, err
	}
	node := l.Nodes[0]
	c := node.Client()
	var last []time.Duration
	start := time.Now()
	for i := range n {
		t0 := time.Now()
		if _, err := c.Apply(ctx, oneNodeSpec(node.ID, i)); err != nil {
			return nil, fmt.Errorf("apply s%d: %w", i, err)
		}
		if i >= n-scaleSample {
			last = append(last, time.Since(t0))
		}
		if (i+1)%100 == 0 {
			log.Info("scale", "networks", i+1, "elapsed", time.Since(start).Round(time.Second))
		}
	}
	all := time.Since(start)
	list, err := timeIt(scaleSample, func() error { _, err := c.Networks(ctx); return err })
	if err != nil {
		return nil, fmt.Errorf("network list: %w", err)
	}
	status, err := timeIt(3, func() error { _, err := c.Status(ctx, ""); return err })
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	time.Sleep(2 * time.Second) // let the data planes settle
	mem, err := nodeMemory(l.Dir)
	if err != nil {
		return nil, err
	}
	idle, err := idleCPU(ctx, l.Dir, idleWindow)
	if err != nil {
		return nil, err
	}
	ready, err := restartReady(ctx, l, node, n)
	if err != nil {
		return nil, err
	}
	log.Info("scale", "networks", n, "apply-p50-ms", percentile(last, 50), "list-p50-ms", percentile(list, 50),
		"status-p50-ms", percentile(status, 50), "restart-s", ready.Seconds(), "pss-per-net-mib", mem.perDataplane(), "idle-cpu-s-per-min", idle.total().Seconds())
	return append(scaleRows(n, all, last, list, status, ready, mem), Row{Part: "scale",
		Figure: fmt.Sprintf("CPU time of %d idle networks, per minute", n), Value: idle.total().Seconds(), Unit: "s",
		Note: fmt.Sprintf("user+system time of the node's processes over %s of nothing happening, scaled to a minute: %s", idleWindow, idle)}), nil
}

// idleCPU returns the CPU time the lab in dir uses over window, scaled to
// a minute.
func idleCPU(ctx context.Context, dir string, window time.Duration) (labCPU, error) {
	before := labCPUOf(dir)
	select {
	case <-ctx.Done():
		return labCPU{}, ctx.Err()
	case <-time.After(window):
	}
	return labCPUOf(dir).minus(before).scaled(time.Minute, window), nil
}

func scaleRows(n int, all time.Duration, last, list, status []time.Duration, ready time.Duration, mem memory) []Row {
	at := fmt.Sprintf("one node with %d one-node networks", n)
	applyP50, listP50, statusP50 := percentile(last, 50), percentile(list, 50), percentile(status, 50)
	perNet := mem.perDataplane()
	return []Row{
		{Part: "scale", Figure: fmt.Sprintf("apply of network %d p50", n), Value: applyP50, Unit: "ms", Goal: "≤ 50 ms",
			Verdict: verdict(applyP50 <= 50), Note: fmt.Sprintf("the last %d applies of %d (all %d took %.0f s)", len(last), n, n, all.Seconds())},
		{Part: "scale", Figure: fmt.Sprintf("network list of %d p50", n), Value: listP50, Unit: "ms", Goal: "≤ 200 ms",
			Verdict: verdict(listP50 <= 200), Note: fmt.Sprintf("%s; p50 of %d", at, len(list))},
		{Part: "scale", Figure: fmt.Sprintf("status of all %d p50", n), Value: statusP50 / 1000, Unit: "s", Goal: "≤ 1 s",
			Verdict: verdict(statusP50 <= 1000), Note: fmt.Sprintf("%s; p50 of %d", at, len(status))},
		{Part: "scale", Figure: fmt.Sprintf("znetd restart ready with %d networks", n), Value: ready.Seconds(), Unit: "s", Goal: "≤ 5 s",
			Verdict: verdict(ready <= 5*time.Second),
			Note:    "SIGTERM, start, until the API answers and status shows every network's data plane (pid, no problem)"},
		{Part: "scale", Figure: fmt.Sprintf("Pss per idle network (%d networks)", n), Value: perNet, Unit: "MiB", Goal: "≤ 2 MiB",
			Verdict: verdict(perNet <= 2), Note: fmt.Sprintf("smaps_rollup Pss of the %d data planes ÷ %d", mem.dataplanes, mem.dataplanes)},
		{Part: "scale", Figure: fmt.Sprintf("node memory with %d networks", n), Value: mem.totalMiB(), Unit: "MiB",
			Note: fmt.Sprintf("Pss of znetd (%.1f MiB) and its data planes; kernel objects (namespaces, bridges, nftables) not counted", float64(mem.znetdKiB)/1024)},
	}
}

// oneNodeSpec is network s<i> with the lab's only node.
func oneNodeSpec(id string, i int) *spec.Spec {
	return &spec.Spec{Name: fmt.Sprintf("s%d", i), Generation: 1, IPRange: netip.MustParsePrefix("10.20.0.0/16"),
		Nodes: []spec.Node{{ID: id, Subnet: netip.MustParsePrefix("10.20.1.0/24")}}}
}

// timeIt runs fn times times and returns how long each run took.
func timeIt(times int, fn func() error) ([]time.Duration, error) {
	var out []time.Duration
	for range times {
		start := time.Now()
		if err := fn(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// memory is the proportional memory of a lab's znetd processes.
type memory struct {
	znetdKiB, dataplanesKiB int64
	dataplanes              int
}

func (m memory) perDataplane() float64 {
	return float64(m.dataplanesKiB) / 1024 / float64(max(1, m.dataplanes))
}

func (m memory) totalMiB() float64 { return float64(m.znetdKiB+m.dataplanesKiB) / 1024 }

// nodeMemory sums the Pss of the lab's znetd and, apart, its data planes
// (znetd processes run as a data plane: "dataplane" in their arguments).
func nodeMemory(dir string) (memory, error) {
	var m memory
	for _, p := range processesMatching(dir) {
		pid, cmd, _ := strings.Cut(p, ": ")
		if !strings.Contains(cmd, "znetd") {
			continue
		}
		kib, err := procField("/proc/"+pid+"/smaps_rollup", "Pss:")
		if err != nil {
			continue // gone meanwhile
		}
		if strings.Contains(cmd, "dataplane") {
			m.dataplanesKiB += kib
			m.dataplanes++
		} else {
			m.znetdKiB += kib
		}
	}
	if m.dataplanes == 0 {
		return m, fmt.Errorf("no data plane of the lab in %s found", dir)
	}
	return m, nil
}

// restartReady stops node's znetd with SIGTERM, starts it again and
// returns the time from the start until the API answers and status shows
// all n networks with a data plane and no problem.
func restartReady(ctx context.Context, l *lab.Lab, node lab.Node, n int) (time.Duration, error) {
	if err := l.KillNode(node, syscall.SIGTERM); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := l.StartNode(ctx, node); err != nil {
		return 0, err
	}
	c := node.Client()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		sts, err := c.Status(ctx, "")
		if err == nil && allAdopted(sts, n) {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("after the restart, not every network up within 5 min (last error: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// allAdopted reports whether sts has n networks, each with a data plane
// and no problem.
func allAdopted(sts []api.NetworkStatus, n int) bool {
	if len(sts) != n {
		return false
	}
	for _, st := range sts {
		if st.PID == 0 || len(st.Problems) > 0 {
			return false
		}
	}
	return true
}
