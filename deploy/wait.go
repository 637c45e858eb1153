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
	// missing are the names of wanted peers without a fresh handshake at
	// the last status; lastErr the error of the last status call.
	missing []string
	lastErr error
}

// waitMesh polls the status of every node that applied s until each has a
// fresh handshake with every peer it should have, or ctx ends; then every
// node still waiting fails, naming the peers it misses. Peers that did not
// apply s are not waited for: they have their own error.
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
		w := &watch{n: n, want: want}
		for _, name := range want {
			w.missing = append(w.missing, name)
		}
		slices.Sort(w.missing)
		waiting = append(waiting, w)
	}
	for len(waiting) > 0 {
		now := opts.Now()
		parallel(waiting, func(w *watch) { w.poll(ctx, s.Name, now) })
		waiting = slices.DeleteFunc(waiting, func(w *watch) bool { return w.lastErr == nil && len(w.missing) == 0 })
		if len(waiting) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			for _, w := range waiting {
				w.n.res.fail(w.timeoutErr())
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

// poll reads the node's status once and works out which wanted peers lack
// a handshake younger than HandshakeFresh at now.
func (w *watch) poll(ctx context.Context, network string, now time.Time) {
	st, err := w.n.status(ctx, network)
	if err != nil {
		w.lastErr = err
		return
	}
	w.lastErr = nil
	fresh := map[string]bool{}
	for _, p := range st.Peers {
		if !p.LastHandshake.IsZero() && now.Sub(p.LastHandshake) < HandshakeFresh {
			fresh[p.PublicKey] = true
		}
	}
	w.missing = w.missing[:0]
	for key, name := range w.want {
		if !fresh[key] {
			w.missing = append(w.missing, name)
		}
	}
	slices.Sort(w.missing)
}

func (w *watch) timeoutErr() error {
	if w.lastErr != nil && !errors.Is(w.lastErr, context.DeadlineExceeded) && !errors.Is(w.lastErr, context.Canceled) {
		return fmt.Errorf("waiting for the mesh: reading its status: %w", w.lastErr)
	}
	return fmt.Errorf("waiting for the mesh: no handshake in the last %s with %s", HandshakeFresh, strings.Join(w.missing, ", "))
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
