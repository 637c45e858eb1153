package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	dataplaneexe "github.com/znet/znet/dataplane"
	"github.com/znet/znet/lab"
)

// DefaultLabNodes is how many nodes the lab100 part deploys one network
// over (issue 17).
const DefaultLabNodes = 100

const (
	// idleSettle is how long the lab is left alone before its idle CPU is
	// measured: NOTIFY retries and the resolvers' quick polls after the
	// last attach are over by then.
	idleSettle = 10 * time.Second
	// idleWindow is how long the idle CPU is measured.
	idleWindow = 30 * time.Second
)

// meshDeadline is how long the lab100 part waits for every handshake of an
// n-node lab after the deploy started: long enough on a loaded machine to
// report how far it got rather than fail without a figure.
func meshDeadline(n int) time.Duration { return max(2*time.Minute, time.Duration(n)*3*time.Second) }

// lab100 deploys one network over a cfg.Nodes-node lab, times every
// handshake after the apply returns and a new name reaching every node,
// and reports the CPU time the lab's processes used, during the deploy
// and over an idle stretch. A mesh that is not complete by meshDeadline
// or a name that does not propagate is reported as such, with the other
// figures.
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
	cpu0 := labCPUOf(l.Dir)
	dctx, cancel := context.WithTimeout(ctx, meshDeadline(n))
	start := time.Now()
	clock := &applyClock{}
	err = deployNoWait(dctx, l, dnsNetwork, clock.connect)
	applied := time.Since(start)
	if err != nil {
		cancel()
		return nil, err
	}
	m := waitMesh(dctx, l, dnsNetwork, start.Add(applied))
	waited := time.Since(start) - applied
	cancel()
	cpuDeploy := labCPUOf(l.Dir).minus(cpu0)
	seen, want := m.pairs()
	log.Info("lab100", "apply-s", applied.Seconds(), "handshakes", seen, "of", want, "after-s", m.after().Seconds())
	logLateness(log, m, l, clock)
	rows := []Row{meshRow(n, applied, waited, m), {Part: "lab100",
		Figure: fmt.Sprintf("CPU time of the %d-node lab during the deploy", n), Value: cpuDeploy.total().Seconds(), Unit: "s",
		Note: "user+system time of every znetd and data plane of the lab, from /proc/PID/stat, from before the deploy until every handshake (or the deadline): " + cpuDeploy.String()}}
	rows = append(rows, propagationRow(ctx, l, cfg, log))
	rows = append(rows, idleRow(ctx, l, log))
	cpuAll := labCPUOf(l.Dir)
	return append(rows, Row{Part: "lab100", Figure: fmt.Sprintf("CPU time of the %d-node lab in all", n), Value: cpuAll.total().Seconds(), Unit: "s",
		Note: "the same from each process's start: lab up, deploy, attaches, name propagation and the idle stretch: " + cpuAll.String()}), nil
}

// meshRow reports the time from the apply's return to the last pair's
// handshake, or how many handshakes there were when the deadline came.
func meshRow(n int, applied, waited time.Duration, m *mesh) Row {
	figure := fmt.Sprintf("znet deploy of %d nodes: every pair handshaken, after the apply returns", n)
	seen, want := m.pairs()
	note := fmt.Sprintf("deploy.Run (NoWait) took %.1f s; then the time of the last handshake the nodes report with each of the %d others (status polled every %s)", applied.Seconds(), n-1, statusEvery(n))
	if err := m.err(); err != nil {
		return Row{Part: "lab100", Figure: figure, Value: waited.Seconds(), Unit: "s", Goal: "≤ 5 s", Verdict: verdict(false),
			Note: fmt.Sprintf("%s; only %d of %d node→peer handshakes %.0f s after the apply (the deadline; the value is that wait, a lower bound): %v", note, seen, want, waited.Seconds(), firstLines(err, 3))}
	}
	after := m.after().Seconds()
	return Row{Part: "lab100", Figure: figure, Value: after, Unit: "s", Goal: "≤ 5 s", Verdict: verdict(after <= 5), Note: note}
}

// propagationRow attaches a workload on every node, then times a new name
// reaching all of them (median of cfg.Rounds); a failure is reported in
// the row.
func propagationRow(ctx context.Context, l *lab.Lab, cfg Config, log *slog.Logger) Row {
	n := len(l.Nodes)
	figure := fmt.Sprintf("new name answers on all %d nodes", n)
	ws, err := attachAll(ctx, l)
	if err != nil {
		return notMeasured("lab100", figure, "≤ 1 s", "failed: "+err.Error())
	}
	prop, err := propagations(ctx, l, ws, max(1, cfg.Rounds), log.With("part", "lab100"))
	if err != nil {
		return notMeasured("lab100", figure, "≤ 1 s", "failed: "+err.Error())
	}
	propS := median(prop) / 1000
	return Row{Part: "lab100", Figure: figure, Value: propS, Unit: "s", Goal: "≤ 1 s",
		Verdict: verdict(propS <= 1), Note: fmt.Sprintf("from the attach call on node 1 until a query from the workload on each other node (a UDP socket in its namespace, every 5 ms) answers it; median of %d", len(prop))}
}

// idleRow measures the CPU time the lab uses while nothing changes, per
// minute: what the network costs to keep.
func idleRow(ctx context.Context, l *lab.Lab, log *slog.Logger) Row {
	figure := fmt.Sprintf("CPU time of the idle %d-node lab, per minute", len(l.Nodes))
	select {
	case <-ctx.Done():
		return notMeasured("lab100", figure, "", "cancelled")
	case <-time.After(idleSettle):
	}
	used, err := idleCPU(ctx, l.Dir, idleWindow)
	if err != nil {
		return notMeasured("lab100", figure, "", "cancelled")
	}
	log.Info("lab100 idle", "cpu-s-per-min", used.total().Seconds())
	return Row{Part: "lab100", Figure: figure, Value: used.total().Seconds(), Unit: "s",
		Note: fmt.Sprintf("user+system time of the lab over %s, %s after the last change, scaled to a minute: %s", idleWindow, idleSettle, used)}
}

// firstLines returns at most n lines of err's text.
func firstLines(err error, n int) string {
	lines := strings.Split(err.Error(), "\n")
	if len(lines) > n {
		lines = append(lines[:n], fmt.Sprintf("(%d more)", len(lines)-n))
	}
	return strings.Join(lines, "; ")
}

// labCPU is the CPU time used by a lab's processes.
type labCPU struct {
	daemons, dataplanes time.Duration
}

func (c labCPU) total() time.Duration { return c.daemons + c.dataplanes }

func (c labCPU) minus(o labCPU) labCPU {
	return labCPU{daemons: c.daemons - o.daemons, dataplanes: c.dataplanes - o.dataplanes}
}

// scaled returns c, used over window, as used over per.
func (c labCPU) scaled(per, window time.Duration) labCPU {
	f := float64(per) / float64(window)
	return labCPU{daemons: time.Duration(math.Round(float64(c.daemons) * f)), dataplanes: time.Duration(math.Round(float64(c.dataplanes) * f))}
}

func (c labCPU) String() string {
	return fmt.Sprintf("znetd %.2f s, data planes %.2f s", c.daemons.Seconds(), c.dataplanes.Seconds())
}

// labCPUOf returns the user and system time used so far by every process
// whose command line names dir (the lab's znetd and data planes; a
// process that exited is not counted).
func labCPUOf(dir string) labCPU {
	var c labCPU
	for _, p := range processesMatching(dir) {
		pid, cmd, _ := strings.Cut(p, ": ")
		used := cpuOfPID(pid)
		if strings.Contains(cmd, dataplaneexe.Binary) {
			c.dataplanes += used
		} else {
			c.daemons += used
		}
	}
	return c
}

// cpuOfPID returns the user and system time process pid used so far.
func cpuOfPID(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count fields from after
	// its closing parenthesis; utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100
