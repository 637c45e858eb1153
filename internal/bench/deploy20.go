package bench

import (
	"context"
	"errors"
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
	note := fmt.Sprintf("a new network each round over a %d-node lab: deploy.Run (NoWait) took %.2f s (median); then the time of the last handshake any node reports with each of the %d others (status polled every %s); median of %d",
		deployNodes, percentile(applied, 50)/1000, deployNodes-1, statusEvery(deployNodes), len(after))
	return []Row{
		{Part: "control", Figure: fmt.Sprintf("znet deploy of %d nodes: every handshake, after the apply returns", deployNodes),
			Value: v, Unit: "s", Goal: "≤ 3 s", Verdict: verdict(v <= 3), Note: note},
	}, nil
}

// deployOnce deploys network name over every node of l without waiting,
// then waits for every handshake; it returns how long the apply took and
// how long after it returned the last pair handshook.
func deployOnce(ctx context.Context, l *lab.Lab, name string) (applied, after time.Duration, err error) {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	if err := deployNoWait(dctx, l, name, nil); err != nil {
		return 0, 0, err
	}
	applied = time.Since(start)
	m := waitMesh(dctx, l, name, start.Add(applied))
	if err := m.err(); err != nil {
		return 0, 0, err
	}
	return applied, m.after(), nil
}

// deployNoWait runs `znet deploy` (deploy.Run with NoWait) of network name
// over every node of l.
func deployNoWait(ctx context.Context, l *lab.Lab, name string, connect func(deploy.NodeRef) (deploy.API, error)) error {
	d := &deploy.Deployment{Name: name, IPRange: netip.MustParsePrefix("10.42.0.0/16")}
	for _, n := range l.Nodes {
		d.Nodes = append(d.Nodes, deploy.NodeRef{ID: n.ID, API: "unix://" + n.Socket, EndpointHost: n.Underlay.String()})
	}
	res, err := deploy.Run(ctx, d, deploy.Options{StateDir: filepath.Join(l.Dir, "deploy"), NoWait: true, Connect: connect})
	if err != nil {
		return fmt.Errorf("deploy %s: %w", name, err)
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("deploy %s: %w", name, err)
	}
	return nil
}

// mesh is what waitMesh saw of a network's handshakes.
type mesh struct {
	nodes   int
	applied time.Time // when the apply returned
	// first holds, per node, the first handshake time it reported for
	// each peer.
	first []map[string]time.Time
	errs  []error // per node: why it did not see every peer
}

// pairs counts the node→peer handshakes seen; want is how many there are.
func (m *mesh) pairs() (seen, want int) {
	for _, f := range m.first {
		seen += len(f)
	}
	return seen, m.nodes * (m.nodes - 1)
}

// after returns how long after the apply returned the last handshake seen
// was (0 if every one came before).
func (m *mesh) after() time.Duration {
	var last time.Time
	for _, f := range m.first {
		for _, t := range f {
			if t.After(last) {
				last = t
			}
		}
	}
	return max(0, last.Sub(m.applied))
}

// err joins the nodes' errors.
func (m *mesh) err() error { return errors.Join(m.errs...) }

// statusEvery is how often waitMesh asks each node of an n-node lab for
// its status: every 50 ms on a small lab, less often on a big one so that
// the bench does not make the load it measures (each status reads the
// node's WireGuard device, n-1 peers). The figure does not depend on it:
// it is taken from the handshake times the nodes report.
func statusEvery(n int) time.Duration {
	return max(50*time.Millisecond, time.Duration(n)*10*time.Millisecond)
}

// waitMesh waits until every node of l shows a handshake with every other
// node on network name, or ctx ends, and returns what it saw; applied is
// when the apply returned.
func waitMesh(ctx context.Context, l *lab.Lab, name string, applied time.Time) *mesh {
	m := &mesh{nodes: len(l.Nodes), applied: applied, first: make([]map[string]time.Time, len(l.Nodes)), errs: make([]error, len(l.Nodes))}
	every := statusEvery(len(l.Nodes))
	var wg sync.WaitGroup
	for i, n := range l.Nodes {
		m.first[i] = map[string]time.Time{}
		wg.Go(func() {
			c := n.Client()
			for {
				sts, err := c.Status(ctx, name)
				if err == nil && len(sts) == 1 {
					for _, p := range sts[0].Peers {
						if _, seen := m.first[i][p.Name]; !seen && !p.LastHandshake.IsZero() {
							m.first[i][p.Name] = p.LastHandshake
						}
					}
					if len(m.first[i]) >= len(l.Nodes)-1 {
						return
					}
				}
				select {
				case <-ctx.Done():
					m.errs[i] = fmt.Errorf("node %s: %d of %d handshakes before the deadline (last error: %v)", n.ID, len(m.first[i]), len(l.Nodes)-1, err)
					return
				case <-time.After(every):
				}
			}
		})
	}
	wg.Wait()
	return m
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
