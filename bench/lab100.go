package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultLabNodes is how many nodes the lab100 part deploys one network
// over (issue 17).
const DefaultLabNodes = 100

// lab100 deploys one network over a cfg.Nodes-node lab, times every
// handshake after the apply returns and a new name reaching every node,
// and reports the CPU time the lab's processes used.
func lab100(ctx context.Context, cfg Config, log *slog.Logger) ([]Row, error) {
	n := cfg.Nodes
	if n < 2 {
		return nil, fmt.Errorf("--nodes %d: want at least 2", n)
	}
	upStart := time.Now()
	l, down, err := upLab(ctx, cfg.Znetd, n, log, "lab100")
	defer down()
	if err != nil {
		return nil, err
	}
	log.Info("lab100", "nodes", n, "up", time.Since(upStart).Round(time.Second))
	cpu0 := cpuOf(l.Dir)
	applied, mesh, err := deployOnce(ctx, l, dnsNetwork)
	if err != nil {
		return nil, err
	}
	cpuDeploy := cpuOf(l.Dir) - cpu0
	log.Info("lab100", "apply-s", applied.Seconds(), "handshakes-after-s", mesh.Seconds())
	ws, err := attachAll(ctx, l)
	if err != nil {
		return nil, err
	}
	prop, err := propagations(ctx, l, ws, max(1, cfg.Rounds), log.With("part", "lab100"))
	if err != nil {
		return nil, err
	}
	cpuAll := cpuOf(l.Dir)
	meshS, propS := mesh.Seconds(), median(prop)/1000
	return []Row{
		{Part: "lab100", Figure: fmt.Sprintf("znet deploy of %d nodes: every pair handshaken, after the apply returns", n),
			Value: meshS, Unit: "s", Goal: "≤ 5 s", Verdict: verdict(meshS <= 5),
			Note: fmt.Sprintf("deploy.Run (NoWait) took %.1f s; then status polled on every node every 50 ms until each shows a handshake with the %d others", applied.Seconds(), n-1)},
		{Part: "lab100", Figure: fmt.Sprintf("new name answers on all %d nodes", n), Value: propS, Unit: "s", Goal: "≤ 1 s",
			Verdict: verdict(propS <= 1), Note: fmt.Sprintf("attach on node 1 until dig from a workload on each other node answers it; median of %d", len(prop))},
		{Part: "lab100", Figure: fmt.Sprintf("CPU time of the %d-node lab during the deploy", n), Value: cpuDeploy.Seconds(), Unit: "s",
			Note: "user+system time of every znetd and data plane of the lab, from /proc/PID/stat, from before the deploy until every handshake"},
		{Part: "lab100", Figure: fmt.Sprintf("CPU time of the %d-node lab in all", n), Value: cpuAll.Seconds(), Unit: "s",
			Note: "the same from each process's start: lab up, deploy, attaches and name propagation"},
	}, nil
}

// cpuOf returns the user and system time used so far by every process
// whose command line names dir (the lab's znetd and data planes; a
// process that exited is not counted).
func cpuOf(dir string) time.Duration {
	ticks := int64(0)
	for _, p := range processesMatching(dir) {
		pid, _, _ := strings.Cut(p, ": ")
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			continue
		}
		// The command name (field 2) may hold spaces: count fields from
		// after its closing parenthesis; utime and stime are fields 14 and 15.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b)[i+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100
