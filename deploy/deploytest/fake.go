// Package deploytest has fake nodes for testing code that deploys networks
// over many nodes: Node is an in-memory znetd that reserves, applies (with
// the daemon's rules for keys, ports and generations), deletes and reports
// status, whose peers show a handshake once it has been polled often
// enough. It has no data plane and no workloads.
//
// Each poll of Status is a moment in which every live link of the node
// makes a handshake (stamped with the node's clock) and receives 1000
// bytes; a silent link (HandshakeAfter) keeps what it had, as a link cut
// by an outage does.
package deploytest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
	"github.com/znet/znet/daemon/admit"
	"github.com/znet/znet/peers"
	"github.com/znet/znet/spec"
)

// ErrUnsupported is returned by the methods of Node that deploy does not
// use (workloads and access peers).
var ErrUnsupported = errors.New("deploytest: not supported by the fake node")

// Node is an in-memory znetd. It is safe for concurrent use.
type Node struct {
	id   string
	key  string
	port int

	// Recorder has the calls so far and the errors set with SetErr
	// (for "Apply", which covers ApplyRaw too).
	apitest.Recorder

	mu sync.Mutex
	// nets are the networks the node knows, by name.
	nets map[string]*network
	// handshakeAfter is the number of Status calls after which peers
	// show a handshake; silent peers never do.
	handshakeAfter int
	silent         map[string]bool
	polls          int
	reserved       int // networks reserved so far, for the next port
	now            func() time.Time
}

type network struct {
	port int
	spec *spec.Spec
	// links is what the node has heard from each peer, by public key.
	links map[string]*link
}

// link is the state of one peer of a network on the node.
type link struct {
	handshake time.Time
	rx        int64
}

// NewNode returns a node with id whose key for every network is
// apitest.Key(n) and whose ports start at 40000+100*n. Its peers handshake
// from the first Status call on.
func NewNode(id string, n byte) *Node {
	return &Node{id: id, key: apitest.Key(n), port: 40000 + 100*int(n), nets: map[string]*network{}, now: time.Now}
}

// ID returns the node's id.
func (f *Node) ID() string { return f.id }

// Key returns the node's public key.
func (f *Node) Key() string { return f.key }

// SetClock makes now the clock the node stamps handshakes with.
func (f *Node) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// HandshakeAfter makes peers show a handshake only from the n-th Status
// call on (counted from now), except for the peers named in silent, which
// never do again: they keep the handshake and bytes they had.
func (f *Node) HandshakeAfter(n int, silent ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handshakeAfter, f.polls = n, 0
	f.silent = map[string]bool{}
	for _, s := range silent {
		f.silent[s] = true
	}
}

// Spec returns the node's applied spec of network (nil for none).
func (f *Node) Spec(network string) *spec.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.nets[network]; n != nil {
		return n.spec.Clone()
	}
	return nil
}

// Has reports whether the node knows network (reserved or applied).
func (f *Node) Has(network string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nets[network] != nil
}

func (f *Node) notFound(network string) error {
	return api.NotFound("name", "no network %s on node %s", network, f.id)
}

// reserveLocked returns network's entry, making it with the next port.
func (f *Node) reserveLocked(name string) *network {
	if n := f.nets[name]; n != nil {
		return n
	}
	n := &network{port: f.port + f.reserved}
	f.reserved++
	f.nets[name] = n
	return n
}

// Reserve implements api.Service.
func (f *Node) Reserve(_ context.Context, name string) (api.Reservation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Record("Reserve", name); err != nil {
		return api.Reservation{}, err
	}
	n := f.reserveLocked(name)
	return api.Reservation{NodeID: f.id, PublicKey: f.key, ListenPort: n.port}, nil
}

// ReservePort implements api.Service: the reservation moves to port.
func (f *Node) ReservePort(_ context.Context, name string, port int) (api.Reservation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Record("ReservePort", name); err != nil {
		return api.Reservation{}, err
	}
	n := f.reserveLocked(name)
	n.port = port
	return api.Reservation{NodeID: f.id, PublicKey: f.key, ListenPort: n.port}, nil
}

// ApplyRaw parses data as the API server does and applies it, which
// validates it as the daemon does.
func (f *Node) ApplyRaw(ctx context.Context, data []byte) (api.ApplyResult, error) {
	s, err := spec.Parse(data)
	if err != nil {
		_ = f.Record("ApplyRaw") // the parse error wins over one set for ApplyRaw
		return api.ApplyResult{}, err
	}
	return f.Apply(ctx, s)
}

// Apply implements api.Service with the daemon's rules (spec.Validate
// for this node, then package admit): the node must be a member, its entry
// must carry the key and port it reserved, and a lower generation, or the
// same one with other content, is a conflict.
func (f *Node) Apply(_ context.Context, in *spec.Spec) (api.ApplyResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Record("Apply", in.Name, in.Generation); err != nil {
		return api.ApplyResult{}, err
	}
	s := in.Clone()
	s.SetDefaults()
	if err := s.Validate(f.id); err != nil {
		return api.ApplyResult{}, err
	}
	if err := admit.Member(s, f.id); err != nil {
		return api.ApplyResult{}, err
	}
	n := f.nets[s.Name]
	fresh := n == nil
	if fresh {
		if err := admit.Unreserved(s, f.id); err != nil {
			return api.ApplyResult{}, err
		}
		n = f.reserveLocked(s.Name)
	}
	changed, err := admit.Check(s, n.spec, f.id, admit.Reservation{PublicKey: f.key, ListenPort: n.port})
	if err != nil {
		if fresh { // as the daemon does, leave no reservation behind
			delete(f.nets, s.Name)
			f.reserved--
		}
		return api.ApplyResult{}, err
	}
	admit.FillSelf(s, f.id, f.key)
	if changed {
		n.spec = s
	}
	return api.ApplyResult{Name: s.Name, Generation: s.Generation, Changed: changed}, nil
}

// Networks implements api.Service.
func (f *Node) Networks(context.Context) ([]api.NetworkSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Record("Networks"); err != nil {
		return nil, err
	}
	out := []api.NetworkSummary{}
	for _, name := range f.namesLocked() {
		sum := api.NetworkSummary{Name: name, State: "reserved"}
		if s := f.nets[name].spec; s != nil {
			sum.State, sum.Generation, sum.IPRange, sum.Nodes = "applied", s.Generation, s.IPRange, len(s.Nodes)
		}
		out = append(out, sum)
	}
	return out, nil
}

func (f *Node) namesLocked() []string {
	var names []string
	for name := range f.nets {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Network implements api.Service.
func (f *Node) Network(_ context.Context, name string) (api.NetworkDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Record("Network", name); err != nil {
		return api.NetworkDetail{}, err
	}
	n := f.nets[name]
	if n == nil {
		return api.NetworkDetail{}, f.notFound(name)
	}
	return api.NetworkDetail{Spec: n.spec.Clone(), Status: f.statusLocked(name, n, false)}, nil
}

// DeleteNetwork implements api.Service.
func (f *Node) DeleteNetwork(_ context.Context, name string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Record("DeleteNetwork", name, force); err != nil {
		return err
	}
	if f.nets[name] == nil {
		return f.notFound(name)
	}
	delete(f.nets, name)
	return nil
}

// Status implements api.Service: every peer the spec gives this node;
// once the node has been polled enough, every live link handshakes at the
// node's clock and receives 1000 bytes.
func (f *Node) Status(_ context.Context, name string) ([]api.NetworkStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Record("Status", name); err != nil {
		return nil, err
	}
	f.polls++
	handshakes := f.polls >= f.handshakeAfter
	if name != "" {
		n := f.nets[name]
		if n == nil {
			return nil, f.notFound(name)
		}
		return []api.NetworkStatus{f.statusLocked(name, n, handshakes)}, nil
	}
	out := []api.NetworkStatus{}
	for _, name := range f.namesLocked() {
		out = append(out, f.statusLocked(name, f.nets[name], handshakes))
	}
	return out, nil
}

func (f *Node) statusLocked(name string, n *network, handshakes bool) api.NetworkStatus {
	st := api.NetworkStatus{Name: name, NodeID: f.id, PublicKey: f.key, ListenPort: n.port, Backend: "fake", Peers: []api.PeerStatus{}}
	if n.spec == nil {
		st.Problems = []string{"reserved only: no spec applied yet"}
		return st
	}
	st.Generation = n.spec.Generation
	if self, ok := n.spec.Node(f.id); ok {
		st.Subnet = self.Subnet
	}
	desired, err := peers.Desired(context.Background(), n.spec, f.id, literalOnly)
	if err != nil {
		st.Problems = []string{err.Error()}
		return st
	}
	if n.links == nil {
		n.links = map[string]*link{}
	}
	for _, p := range desired {
		key := p.PublicKey.String()
		l := n.links[key]
		if l == nil {
			l = &link{}
			n.links[key] = l
		}
		if handshakes && !f.silent[p.Name] {
			l.handshake = f.now()
			l.rx += 1000
		}
		ps := api.PeerStatus{Name: p.Name, PublicKey: key, AllowedIPs: p.AllowedIPs,
			LastHandshake: l.handshake, RxBytes: l.rx, TxBytes: 2 * l.rx}
		if p.Endpoint.IsValid() {
			ps.Endpoint = p.Endpoint.String()
		}
		st.Peers = append(st.Peers, ps)
	}
	return st
}

// literalOnly is a peers.Resolver for specs whose endpoints are all IP
// literals: it refuses every host name.
func literalOnly(_ context.Context, host string) (netip.Addr, error) {
	return netip.Addr{}, fmt.Errorf("the fake node resolves no host names (%s)", host)
}

// Attach is not supported: it returns ErrUnsupported.
func (f *Node) Attach(context.Context, string, api.AttachRequest) (api.Attachment, error) {
	return api.Attachment{}, ErrUnsupported
}

// Detach is not supported: it returns ErrUnsupported.
func (f *Node) Detach(context.Context, string, string) error { return ErrUnsupported }

// Workloads is not supported: it returns ErrUnsupported.
func (f *Node) Workloads(context.Context, string) ([]api.Workload, error) {
	return nil, ErrUnsupported
}

// Workload is not supported: it returns ErrUnsupported.
func (f *Node) Workload(context.Context, string, string) (api.Attachment, error) {
	return api.Attachment{}, ErrUnsupported
}

// AddAccess is not supported: it returns ErrUnsupported.
func (f *Node) AddAccess(context.Context, string, api.AccessRequest) (api.AccessGrant, error) {
	return api.AccessGrant{}, ErrUnsupported
}

// RemoveAccess is not supported: it returns ErrUnsupported.
func (f *Node) RemoveAccess(context.Context, string, string) error { return ErrUnsupported }

// AccessPeers is not supported: it returns ErrUnsupported.
func (f *Node) AccessPeers(context.Context, string) ([]api.AccessPeer, error) {
	return nil, ErrUnsupported
}
