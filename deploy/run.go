package deploy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/znet/znet/api"
	"github.com/znet/znet/peers"
	"github.com/znet/znet/spec"
)

// API is what deploy needs of a node: the znet API, plus sending a spec
// as a document so every node gets the very same bytes. *api.Client
// implements it.
type API interface {
	api.Service
	ApplyRaw(ctx context.Context, data []byte) (api.ApplyResult, error)
}

var _ API = (*api.Client)(nil)

// Connect is the default Options.Connect: an *api.Client on the node's Unix
// socket, or for an https API one that sends the token of ref.TokenFile
// and trusts ref.CAFile (or the system's roots). It reads those files but
// does not connect until the first call.
func Connect(ref NodeRef) (API, error) {
	if ref.IsHTTPS() {
		token, err := api.ReadTokenFile(ref.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("token_file: %w", err)
		}
		cfg, err := api.ClientTLSConfig(ref.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		c, err := api.NewHTTPSClient(ref.API, token, cfg)
		if err != nil {
			return nil, fmt.Errorf("api: %w", err)
		}
		return c, nil
	}
	socket, err := ref.Socket()
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	return api.NewClient(socket), nil
}

// Options tune Run. The zero value deploys without a record, waits with
// the defaults and talks to nodes through Connect.
type Options struct {
	// StateDir holds the record of each network's node APIs ("" keeps
	// none, so a left-out node cannot be found to delete the network on).
	StateDir string
	// NoWait skips waiting for handshakes; each node's status is read once.
	NoWait bool
	// Connect returns the API of a node (default Connect).
	Connect func(NodeRef) (API, error)
	// Resolver looks up endpoint host names when working out which peers a
	// node should have (default peers.NetResolver(nil)).
	Resolver peers.Resolver
	// PollInterval is how often Status is asked while waiting (default 1s).
	PollInterval time.Duration
	// Forget are ids of nodes left out of the file that are gone for good:
	// they are dropped from the spec and the record without being
	// contacted, so the network stays on them if they ever come back.
	Forget []string
}

func (o *Options) setDefaults() {
	if o.Connect == nil {
		o.Connect = Connect
	}
	if o.Resolver == nil {
		o.Resolver = peers.NetResolver(nil)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
}

// Result is what a deploy did.
type Result struct {
	Network string `json:"network"`
	// Generation is the generation deployed (0 when nothing was applied).
	Generation uint64 `json:"generation"`
	// Spec is the spec sent to every node (nil when nothing was applied).
	Spec *spec.Spec `json:"spec,omitempty"`
	// Nodes are the file's nodes in its order, then the removed ones by id.
	Nodes []NodeResult `json:"nodes"`
}

// NodeResult is what a deploy did on one node.
type NodeResult struct {
	ID string `json:"id"`
	// Removed is set for a node left out of the file: the network is gone
	// from the spec, and was deleted on the node unless Err says otherwise
	// or Forgotten is set.
	Removed bool `json:"removed,omitempty"`
	// Forgotten is set for a removed node named in Options.Forget: it was
	// not contacted, and the record no longer holds it.
	Forgotten bool `json:"forgotten,omitempty"`
	// Subnet is the node's subnet in the spec.
	Subnet netip.Prefix `json:"subnet,omitzero"`
	// Applied says the node took the spec; Changed that it was new to it.
	Applied bool `json:"applied"`
	Changed bool `json:"changed"`
	// Err is what went wrong on this node (nil if nothing); Error its text.
	Err   error  `json:"-"`
	Error string `json:"error,omitempty"`
	// Status is the node's last reported state of the network.
	Status *api.NetworkStatus `json:"status,omitempty"`
}

func (r *NodeResult) fail(err error) {
	r.Err, r.Error = err, err.Error()
}

// Failed returns the nodes that have an error.
func (r *Result) Failed() []NodeResult {
	var out []NodeResult
	for _, n := range r.Nodes {
		if n.Err != nil {
			out = append(out, n)
		}
	}
	return out
}

// Err returns the errors of all failed nodes joined, each as "node ID:
// error", or nil when every node is fine.
func (r *Result) Err() error {
	var errs []error
	for _, n := range r.Failed() {
		errs = append(errs, fmt.Errorf("node %s: %w", n.ID, n.Err))
	}
	return errors.Join(errs...)
}

// node is one node during a run.
type node struct {
	ref     NodeRef
	api     API
	current *spec.Spec // applied before this run; nil for none
	// before is the node's peers before this run's apply, by public key:
	// waiting counts only handshakes newer than these.
	before  map[string]api.PeerStatus
	reserve api.Reservation
	ready   bool // reserved: takes part in this generation
	keep    bool // a left-out node to remember for the next run
	res     NodeResult
}

// Run deploys d: it reserves on every node, plans the subnets, applies the
// next generation to every node (the public ones in parallel, then the
// hidden ones; see applyAll), deletes the network on nodes
// left out of d, saves the record and, unless opts.NoWait, waits (as long
// as ctx allows) until every node has heard from every peer it should have
// (peers.Desired, leaving out peers that failed) since the apply: a
// handshake newer than the node reported before it, or a packet (see
// waitMesh).
//
// Problems with one node are in its NodeResult (see Result.Err) and do not
// stop the others. Run returns an error, and no Result, when d is invalid or
// the plan is impossible (a changed ip_range, a full range); then nothing
// was applied. Saving the record is the last step: when it fails, Run
// returns both the Result and the error.
func Run(ctx context.Context, d *Deployment, opts Options) (*Result, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if err := checkForget(d, opts.Forget); err != nil {
		return nil, err
	}
	opts.setDefaults()
	rec, err := loadRecord(opts.StateDir, d.Name)
	if err != nil {
		return nil, err
	}
	nodes := make([]*node, len(d.Nodes))
	for i, ref := range d.Nodes {
		nodes[i] = &node{ref: ref, res: NodeResult{ID: ref.ID}}
	}
	parallel(nodes, func(n *node) { n.prepare(ctx, d.Name, opts.Connect) })

	var current []*spec.Spec
	ready := map[string]api.Reservation{}
	var members []*node
	for _, n := range nodes {
		current = append(current, n.current)
		if n.ready {
			ready[n.ref.ID] = n.reserve
			members = append(members, n)
		}
	}
	res := &Result{Network: d.Name}
	var gone []*node
	if len(members) > 0 {
		newest := newestSpec(current)
		gen := uint64(1)
		if newest != nil {
			gen = newest.Generation + 1
		}
		if err := checkForgetKnown(d.Name, opts.Forget, newest, rec); err != nil {
			return nil, err
		}
		s, err := buildSpec(d, gen, newest, ready)
		if err != nil {
			return nil, err
		}
		res.Generation, res.Spec = gen, s
		if err := applyAll(ctx, s, members); err != nil {
			return nil, err
		}
		gone = leftOut(d, newest, rec, opts)
		parallel(gone, func(n *node) { n.remove(ctx, d.Name) })
		if opts.NoWait {
			parallel(members, func(n *node) { n.pollStatus(ctx, d.Name) })
		} else {
			waitMesh(ctx, s, nodes, opts)
		}
	}
	for _, n := range nodes {
		if s := res.Spec; s != nil {
			if m, ok := s.Node(n.ref.ID); ok {
				n.res.Subnet = m.Subnet
			}
		}
		res.Nodes = append(res.Nodes, n.res)
	}
	slices.SortFunc(gone, func(a, b *node) int { return cmp.Compare(a.ref.ID, b.ref.ID) })
	for _, n := range gone {
		res.Nodes = append(res.Nodes, n.res)
	}
	if res.Spec == nil {
		return res, nil // nothing changed: the record stays as it was
	}
	return res, saveRecord(opts.StateDir, nextRecord(d, gone))
}

// prepare connects to the node, reads its applied spec and reserves.
func (n *node) prepare(ctx context.Context, network string, connect func(NodeRef) (API, error)) {
	var err error
	if n.api, err = connect(n.ref); err != nil {
		n.res.fail(fmt.Errorf("connecting: %w", err))
		return
	}
	detail, err := n.api.Network(ctx, network)
	switch {
	case errors.Is(err, api.ErrNotFound):
	case err != nil:
		n.res.fail(fmt.Errorf("reading its spec of %s: %w", network, err))
		return
	default:
		n.current = detail.Spec
		n.before = map[string]api.PeerStatus{}
		for _, p := range detail.Status.Peers {
			n.before[p.PublicKey] = p
		}
	}
	var r api.Reservation
	if n.ref.ListenPort != 0 {
		r, err = n.api.ReservePort(ctx, network, n.ref.ListenPort)
	} else {
		r, err = n.api.Reserve(ctx, network)
	}
	if err != nil {
		n.res.fail(fmt.Errorf("reserving %s: %w", network, err))
		return
	}
	if r.NodeID != n.ref.ID {
		n.res.fail(fmt.Errorf("the znetd at %s is node %q, not %q", n.ref.API, r.NodeID, n.ref.ID))
		return
	}
	n.reserve, n.ready = r, true
}

// applyAll sends s to every member: the public members in parallel, then,
// once they all answered, the hidden ones in parallel. A hidden member
// starts its handshakes the moment it is configured, and an initiation
// that reaches a node not configured yet is lost until WireGuard's 5 s
// retry (11 of 20 deploys of a 3-node lab took 5 s that way); the public
// members never start a link to a hidden one. Between public members the
// daemon's stagger decides who starts (peers.Waiting).
func applyAll(ctx context.Context, s *spec.Spec, members []*node) error {
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encoding the spec: %w", err)
	}
	var public, hidden []*node
	for _, n := range members {
		if m, _ := s.Node(n.ref.ID); m.Endpoint == "" {
			hidden = append(hidden, n)
		} else {
			public = append(public, n)
		}
	}
	applyEach(ctx, s.Generation, data, public)
	applyEach(ctx, s.Generation, data, hidden)
	return nil
}

// applyEach sends the spec data of generation gen to every node in
// parallel.
func applyEach(ctx context.Context, gen uint64, data []byte, nodes []*node) {
	parallel(nodes, func(n *node) {
		r, err := n.api.ApplyRaw(ctx, data)
		if err != nil {
			n.res.fail(fmt.Errorf("applying generation %d: %w", gen, err))
			return
		}
		n.res.Applied, n.res.Changed = true, r.Changed
	})
}

// leftOut returns the nodes that were members (of newest, or of the
// record) but are not in d, each with its API from the record when known.
// A node whose API is now one of d's nodes' is forgotten, never touched;
// so is a node in opts.Forget, which is reported as Forgotten.
func leftOut(d *Deployment, newest *spec.Spec, rec *record, opts Options) []*node {
	inFile := map[string]bool{}
	apis := map[string]bool{}
	for _, ref := range d.Nodes {
		inFile[ref.ID], apis[ref.API] = true, true
	}
	var ids []string
	if newest != nil {
		for _, m := range newest.Nodes {
			ids = append(ids, m.ID)
		}
	}
	for _, m := range rec.Nodes {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	var out []*node
	for _, id := range slices.Compact(ids) {
		if inFile[id] {
			continue
		}
		n := &node{ref: NodeRef{ID: id}, res: NodeResult{ID: id, Removed: true}}
		ref, known := rec.find(id)
		switch {
		case slices.Contains(opts.Forget, id):
			n.res.Forgotten = true
		case !known:
			n.res.fail(errors.New("left out of the file, but its API is not in the deploy record; delete the network on it by hand"))
		case apis[ref.API]:
			continue // the same znetd is in the file under another id
		default:
			n.ref = ref
			var err error
			if n.api, err = opts.Connect(ref); err != nil {
				n.res.fail(forgetHint(id, fmt.Errorf("connecting: %w", err)))
				n.keep = true
			}
		}
		out = append(out, n)
	}
	return out
}

// remove deletes the network on a left-out node (with its workloads).
func (n *node) remove(ctx context.Context, network string) {
	if n.api == nil {
		return
	}
	detail, err := n.api.Network(ctx, network)
	switch {
	case errors.Is(err, api.ErrNotFound):
		return // gone already
	case err != nil:
		n.keep = true
		n.res.fail(forgetHint(n.ref.ID, fmt.Errorf("deleting %s (left out of the file): %w", network, err)))
		return
	case detail.Status.NodeID != "" && detail.Status.NodeID != n.ref.ID:
		n.res.fail(fmt.Errorf("the znetd at %s is now node %q, not %q; leaving its %s alone", n.ref.API, detail.Status.NodeID, n.ref.ID, network))
		return
	}
	if err := n.api.DeleteNetwork(ctx, network, true); err != nil && !errors.Is(err, api.ErrNotFound) {
		n.keep = true
		n.res.fail(forgetHint(n.ref.ID, fmt.Errorf("deleting %s (left out of the file): %w", network, err)))
	}
}

// nextRecord is what to remember after a run: the file's nodes, and the
// left-out nodes the network could not be deleted on yet.
func nextRecord(d *Deployment, gone []*node) *record {
	r := &record{Network: d.Name}
	for _, ref := range d.Nodes {
		r.Nodes = append(r.Nodes, NodeRef{ID: ref.ID, API: ref.API, TokenFile: ref.TokenFile, CAFile: ref.CAFile})
	}
	for _, n := range gone {
		if n.keep {
			r.Nodes = append(r.Nodes, NodeRef{ID: n.ref.ID, API: n.ref.API, TokenFile: n.ref.TokenFile, CAFile: n.ref.CAFile})
		}
	}
	return r
}

// parallel runs fn for every item at once and waits for all.
func parallel[T any](items []T, fn func(T)) {
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Go(func() { fn(it) })
	}
	wg.Wait()
}
