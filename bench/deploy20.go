package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"github.com/znet/znet/deploy"
	"github.com/znet/znet/lab"
)

const deployNodes = 20

// deployMesh times `znet deploy` (deploy.Run without waiting) of a new
// network over a deployNodes-node lab, then the wait until every node
// shows a handshake with every other.
func deployMesh(ctx context.Context, cfg Config, log *slog.Logger) ([]Row, error) {
	l, down, err := upLab(ctx, cfg.Znetd, deployNodes, log, "deploy")
	defer down()
	if err != nil {
		return nil, err
	}
	var applied, after []time.Duration
	for r := range max(1, cfg.Rounds) {
		a, w, err := deployOnce(ctx, l, fmt.Sprintf("mesh%d", r))
		if err != nil {
			return nil, err
		}
		log.Info("control plane", "deploy-nodes", deployNodes, "apply-ms", a.Milliseconds(), "handshakes-after-ms", w.Milliseconds())
		applied, after = append(applied, a), append(after, w)
	}
	v := percentile(after, 50) / 1000
	note := fmt.Sprintf("a new network each round over a %d-node lab: deploy.Run (NoWait) took %.2f s (median); then status polled on every node every 50 ms until it shows a handshake with each of the %d others; median of %d",
		deployNodes, percentile(applied, 50)/1000, deployNodes-1, len(after))
	return []Row{
		{Part: "control", Figure: fmt.Sprintf("znet deploy of %d nodes: every handshake, after the apply returns", deployNodes),
			Value: v, Unit: "s", Goal: "≤ 3 s", Verdict: verdict(v <= 3), Note: note},
	}, nil
}

// deployOnce deploys network name over every node of l without waiting,
// then waits for every handshake; it returns how long each took.
func deployOnce(ctx context.Context, l *lab.Lab, name string) (applied, after time.Duration, err error) {
	d := &deploy.Deployment{Name: name, IPRange: netip.MustParsePrefix("10.42.0.0/16")}
	for _, n := range l.Nodes {
		d.Nodes = append(d.Nodes, deploy.NodeRef{ID: n.ID, API: "unix://" + n.Socket, EndpointHost: n.Underlay.String()})
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := deploy.Run(dctx, d, deploy.Options{StateDir: filepath.Join(l.Dir, "deploy"), NoWait: true})
	if err != nil {
		return 0, 0, fmt.Errorf("deploy %s: %w", name, err)
	}
	if err := res.Err(); err != nil {
		return 0, 0, fmt.Errorf("deploy %s: %w", name, err)
	}
	applied = time.Since(start)
	if err := waitMesh(dctx, l, name); err != nil {
		return 0, 0, err
	}
	return applied, time.Since(start) - applied, nil
}

// waitMesh waits until every node of l shows a handshake with every other
// node on network name.
func waitMesh(ctx context.Context, l *lab.Lab, name string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(l.Nodes))
	for i, n := range l.Nodes {
		wg.Go(func() {
			c := n.Client()
			for {
				sts, err := c.Status(ctx, name)
				if err == nil && len(sts) == 1 {
					ok := 0
					for _, p := range sts[0].Peers {
						if !p.LastHandshake.IsZero() {
							ok++
						}
					}
					if ok >= len(l.Nodes)-1 {
						return
					}
				}
				select {
				case <-ctx.Done():
					errs[i] = fmt.Errorf("node %s: not every handshake before the deadline (last error: %v)", n.ID, err)
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// deployRows runs deployMesh; a failure leaves its row "not measured" with
// the error.
func deployRows(ctx context.Context, cfg Config) []Row {
	rows, err := deployMesh(ctx, cfg, cfg.Log)
	if err != nil {
		cfg.Log.Error("deploy of a big lab", "err", err)
		return []Row{notMeasured("control", fmt.Sprintf("znet deploy of %d nodes: every handshake, after the apply returns", deployNodes), "≤ 3 s", "failed: "+err.Error())}
	}
	return rows
}
