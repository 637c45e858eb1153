package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/znet/znet/api"
	"github.com/znet/znet/peers"
	"github.com/znet/znet/spec"
)

// watch is what waiting knows of one node.
type watch struct {
	n *node
	// want maps the public key of every peer the node should have to its
	// name.
	want map[string]string
	// rxBase is each peer's received bytes at the first status after the
	// apply; heard the peers that showed life since the apply.
	rxBase map[string]int64
	heard  map[string]bool
	// missing are the names of wanted peers not heard from at the last
	// status; lastErr the error of the last status call.
	missing []string
	lastErr error
}

// waitMesh polls the status of every node that applied s until each has
// heard from every peer it should have since the apply, or ctx ends; then
// every node still waiting fails, naming the peers it misses. Peers that
// did not apply s are not waited for: they have their own error.
//
// A peer is heard from when the node reports a handshake with it newer
// than the one it reported before the apply, or more bytes received from
// it than at the first status after the apply. Both compare a node's
// figures with its own earlier ones, so the nodes' clocks and the machine
// running deploy need not agree; and a handshake from before an outage
// never counts, however recent.
func waitMesh(ctx context.Context, s *spec.Spec, nodes []*node, opts Options) {
	notApplied := map[string]bool{}
	for _, m := range s.Nodes {
		notApplied[m.ID] = true
	}
	for _, n := range nodes {
		if n.res.Applied {
			delete(notApplied, n.ref.ID)
		}
	}
	var waiting []*watch
	for _, n := range nodes {
		if !n.res.Applied {
			continue
		}
		want, err := wantedPeers(ctx, s, n.ref.ID, opts.Resolver, notApplied)
		if err != nil {
			n.res.fail(fmt.Errorf("working out its peers: %w", err))
			continue
		}
		w := &watch{n: n, want: want, rxBase: map[string]int64{}, heard: map[string]bool{}}
		for _, name := range want {
			w.missing = append(w.missing, name)
		}
		slices.Sort(w.missing)
		waiting = append(waiting, w)
	}
	for len(waiting) > 0 {
		parallel(waiting, func(w *watch) { w.poll(ctx, s.Name) })
		waiting = slices.DeleteFunc(waiting, func(w *watch) bool { return w.lastErr == nil && len(w.missing) == 0 })
		if len(waiting) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			for _, w := range waiting {
				w.n.res.fail(w.timeoutErr(s.Generation))
			}
			return
		case <-time.After(opts.PollInterval):
		}
	}
}

// wantedPeers returns the peers node id should have in s, public key to
// name, leaving out the nodes in skip.
func wantedPeers(ctx context.Context, s *spec.Spec, id string, resolve peers.Resolver, skip map[string]bool) (map[string]string, error) {
	desired, err := peers.Desired(ctx, s, id, resolve)
	if err != nil {
		return nil, err
	}
	want := map[string]string{}
	for _, p := range desired {
		if !skip[p.Name] {
			want[p.PublicKey.String()] = p.Name
		}
	}
	return want, nil
}

// poll reads the node's status once and works out which wanted peers it
// has not heard from since the apply.
func (w *watch) poll(ctx context.Context, network string) {
	st, err := w.n.status(ctx, network)
	if err != nil {
		w.lastErr = err
		return
	}
	w.lastErr = nil
	for _, p := range st.Peers {
		if _, wanted := w.want[p.PublicKey]; !wanted || w.heard[p.PublicKey] {
			continue
		}
		before := w.n.before[p.PublicKey]
		base, polled := w.rxBase[p.PublicKey]
		switch {
		case !p.LastHandshake.IsZero() && p.LastHandshake.After(before.LastHandshake):
			w.heard[p.PublicKey] = true
		case polled && p.RxBytes > base:
			w.heard[p.PublicKey] = true
		case !polled:
			w.rxBase[p.PublicKey] = p.RxBytes
		}
	}
	w.missing = w.missing[:0]
	for key, name := range w.want {
		if !w.heard[key] {
			w.missing = append(w.missing, name)
		}
	}
	slices.Sort(w.missing)
}

func (w *watch) timeoutErr(gen uint64) error {
	if w.lastErr != nil && !errors.Is(w.lastErr, context.DeadlineExceeded) && !errors.Is(w.lastErr, context.Canceled) {
		return fmt.Errorf("waiting for the mesh: reading its status: %w", w.lastErr)
	}
	return fmt.Errorf("waiting for the mesh: no new handshake or packet from %s since generation %d was applied", strings.Join(w.missing, ", "), gen)
}

// status reads the node's status of network and keeps it in the result.
func (n *node) status(ctx context.Context, network string) (api.NetworkStatus, error) {
	list, err := n.api.Status(ctx, network)
	if err != nil {
		return api.NetworkStatus{}, err
	}
	for _, st := range list {
		if st.Name == network {
			n.res.Status = &st
			return st, nil
		}
	}
	return api.NetworkStatus{}, fmt.Errorf("the node reports no status of %s", network)
}

// pollStatus reads the node's status once, for a run that does not wait.
func (n *node) pollStatus(ctx context.Context, network string) {
	if !n.res.Applied {
		return
	}
	if _, err := n.status(ctx, network); err != nil {
		n.res.fail(fmt.Errorf("reading its status: %w", err))
	}
}
