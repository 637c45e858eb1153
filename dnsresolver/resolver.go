package dnsresolver

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned (wrapped) by Update, and by Push through the control
// socket, once the Resolver is closed.
var ErrClosed = errors.New("resolver closed")

// Options tune a Resolver; the zero value is what production uses.
type Options struct {
	// Do runs fn, which creates sockets, so that they are created in the
	// network namespace the resolver serves, and returns fn's error: every
	// listening and every outgoing socket is made inside a call of Do. It
	// must run fn before it returns, and may run it on another goroutine
	// (namespaces.Do with the namespace's handle does both). nil runs fn
	// directly, for a process that lives in that namespace.
	Do func(fn func() error) error
	// Port is the DNS port, where this resolver listens and where it
	// reaches its members; 0 means 53.
	Port int
	// PollInterval is how often each member's SOA serial is checked, a
	// fallback for lost NOTIFYs: ± 25 %, and longer with more than
	// pollBudget members (pollDelay); 0 means 30 s.
	PollInterval time.Duration
	// Forwarder asks the config's upstreams for names outside the zone;
	// nil refuses them whatever the config says. The resolver does not
	// close it.
	Forwarder *Forwarder
	// OnAnswer, when set, is called for every answer the resolver sends,
	// on the goroutine that sends it: a data plane counts its DNS load
	// with its traffic (idlemem.Procs), so that a network busy with
	// lookups only gets all its CPUs too. It must be cheap.
	OnAnswer func()
}

// defaultPollInterval is Options.PollInterval's default. NOTIFY carries
// every change at once; the poll only catches one that was lost (every
// retry of it, for notifyTries, went unanswered), so it can be slow, and
// an idle network then costs next to nothing.
const defaultPollInterval = 30 * time.Second

// Stats is what a resolver holds: its own records and, per member, what it
// last got from it.
type Stats struct {
	// Serial is the serial of this node's own records.
	Serial uint32 `json:"serial"`
	// Records counts this node's workloads.
	Records int `json:"records"`
	// Members are indexed by member id.
	Members map[string]MemberStats `json:"members"`
	// Queries counts the answers sent since the resolver started, by
	// response code name (NOERROR, NXDOMAIN, REFUSED, ...); codes never
	// sent are left out.
	Queries map[string]uint64 `json:"queries,omitempty"`
}

// MemberStats is what a resolver holds of one member.
type MemberStats struct {
	// Serial is the member's serial of the records held (0 before the first
	// transfer).
	Serial uint32 `json:"serial"`
	// Records counts the member's workloads held.
	Records int `json:"records"`
	// LastSync is when the member last answered (a serial check or a
	// transfer); zero if never.
	LastSync time.Time `json:"last_sync"`
	// Err is the last error talking to the member, empty after a success.
	Err string `json:"err,omitempty"`
}

// Resolver is one network's authoritative resolver on this node. Its methods
// are safe for concurrent use.
type Resolver struct {
	log  *slog.Logger
	opts Options
	view atomic.Pointer[view] // what ServeDNS answers from

	tcpLimits *connLimits // the caps of every TCP server's connections

	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	failed   chan error    // a server failed; buffered
	done     chan struct{} // closed when everything stopped
	wg       sync.WaitGroup

	mu     sync.Mutex
	cfg    Config // normalized
	closed bool
	// changes counts the Configs applied (Update and patchMembers): the
	// control server patches only a resolver whose last change it made.
	changes     uint64
	serial      uint32 // of the view, bumped on every change
	localSerial uint32 // of this node's records
	members     map[string]*member
	servers     map[netip.AddrPort]servers // by listening address
	err         error                      // why it stopped, if not by Close

	// answers counts what ServeDNS and the UDP fast path answered.
	answers rcodeCounts

	// dropNotify makes the resolver send no NOTIFY (tests of polling).
	dropNotify atomic.Bool
}

// New starts a Resolver for cfg with the default Options: it listens on
// cfg's gateway addresses in the calling process's network namespace and
// starts syncing with the members. Close stops it.
func New(cfg Config, log *slog.Logger) (*Resolver, error) {
	return NewWithOptions(cfg, log, Options{})
}

// NewWithOptions is New with opts. It returns an error wrapping
// ErrInvalidConfig for a bad cfg, or the error of creating a listening
// socket. log may be nil.
func NewWithOptions(cfg Config, log *slog.Logger, opts Options) (*Resolver, error) {
	r, err := newResolver(cfg, log, opts)
	if err != nil {
		return nil, err
	}
	set, err := r.listen(r.listenAddrs(r.cfg))
	if err != nil {
		return nil, err
	}
	for _, srvs := range set {
		r.serve(srvs)
	}
	r.mu.Lock()
	r.servers = set
	crowd := r.heldCount(r.cfg.Members) >= crowdMembers
	for _, m := range r.cfg.Members {
		r.startMemberLocked(m, nil, crowd)
	}
	r.mu.Unlock()
	go r.run()
	return r, nil
}

// newResolver returns a Resolver for cfg that answers ServeDNS but neither
// listens nor syncs yet.
func newResolver(cfg Config, log *slog.Logger, opts Options) (*Resolver, error) {
	ncfg, err := cfg.normalized()
	if err != nil {
		return nil, fmt.Errorf("starting resolver: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Do == nil {
		opts.Do = func(fn func() error) error { return fn() }
	}
	if opts.Port == 0 {
		opts.Port = 53
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = defaultPollInterval
	}
	r := &Resolver{
		log:     log.With("network", ncfg.Network),
		opts:    opts,
		stop:    make(chan struct{}),
		failed:  make(chan error, 1),
		done:    make(chan struct{}),
		cfg:     ncfg,
		members: map[string]*member{},
		servers: map[netip.AddrPort]servers{},
	}
	r.tcpLimits = newConnLimits()
	r.localSerial = nextSerial(0)
	r.serial = r.localSerial
	r.publishLocked()
	return r, nil
}

// Update replaces the Config: new local records bump this node's serial
// and are announced to every member at once, members added start syncing,
// members removed lose their records at once. New gateways move the
// listening sockets (the new ones are opened before the old ones close). It
// returns an error wrapping ErrInvalidConfig or ErrClosed, or the error of
// listening on a new address; on error nothing changed.
func (r *Resolver) Update(cfg Config) error {
	_, err := r.update(cfg)
	return err
}

// update is Update; it also returns the resolver's count of changes
// (Resolver.changes) after this one.
func (r *Resolver) update(cfg Config) (uint64, error) {
	ncfg, err := cfg.normalized()
	if err != nil {
		return 0, fmt.Errorf("updating resolver: %w", err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return 0, fmt.Errorf("updating resolver: %w", ErrClosed)
	}
	// Listen on new addresses before anything changes; listening needs no
	// lock, but holding it keeps Updates in order.
	want := r.listenAddrs(ncfg)
	var add []netip.AddrPort
	for _, a := range want {
		if _, ok := r.servers[a]; !ok {
			add = append(add, a)
		}
	}
	set, err := r.listen(add)
	if err != nil {
		r.mu.Unlock()
		return 0, fmt.Errorf("updating resolver: %w", err)
	}
	var old []servers
	for a, srvs := range r.servers {
		if !slices.Contains(want, a) {
			old = append(old, srvs)
			delete(r.servers, a)
		}
	}
	for a, srvs := range set {
		r.serve(srvs)
		r.servers[a] = srvs
	}
	prev := r.cfg
	r.cfg = ncfg
	identity := prev.Network != ncfg.Network || prev.NodeID != ncfg.NodeID
	localChanged := identity || !slices.Equal(prev.Local, ncfg.Local)
	if localChanged {
		r.localSerial = nextSerial(r.localSerial)
	}
	kept := maps.Clone(r.members)
	r.reconcileMembersLocked(identity)
	if !localChanged { // else the NOTIFYs below carry packets both ways
		r.recheckLocked(kept)
	}
	r.publishLocked()
	if localChanged {
		// A member started by this Update announces at once anyway, or
		// when its quiet start ends: a signal would end that early.
		for id, m := range r.members {
			if kept[id] == m {
				signal(m.push)
			}
		}
	}
	r.changes++
	changes := r.changes
	r.mu.Unlock()
	for _, srvs := range old {
		srvs.shutdown()
	}
	return changes, nil
}

// reconcileMembersLocked starts syncing with new members, stops syncing
// with (and forgets) removed ones, and restarts members whose gateways
// changed, keeping their records. With identity (the network or this node's
// id changed) every member starts afresh.
func (r *Resolver) reconcileMembersLocked(identity bool) {
	want := map[string]Member{}
	for _, m := range r.cfg.Members {
		want[m.ID] = m
	}
	moved := map[string]*member{}
	for id, m := range r.members {
		if w, ok := want[id]; !ok || identity || w != m.Member {
			m.cancel()
			delete(r.members, id)
			if ok && !identity {
				moved[id] = m
			}
		}
	}
	var start []Member
	fresh := 0
	for _, m := range r.cfg.Members {
		if _, ok := r.members[m.ID]; !ok {
			start = append(start, m)
			if moved[m.ID] == nil && r.cfg.holds(m.ID) {
				fresh++
			}
		}
	}
	for _, m := range start {
		r.startMemberLocked(m, moved[m.ID], fresh >= crowdMembers)
	}
}

// heldCount returns how many of members r.cfg holds (Config.Hold).
func (r *Resolver) heldCount(members []Member) int {
	n := 0
	for _, m := range members {
		if r.cfg.holds(m.ID) {
			n++
		}
	}
	return n
}

// publishLocked bumps the view serial and publishes a new view of the
// config and the records held.
func (r *Resolver) publishLocked() {
	r.serial = nextSerial(r.serial)
	held := make(map[string]map[string]addrs, len(r.members))
	for id, m := range r.members {
		held[id] = m.records
	}
	r.view.Store(newView(r.cfg, r.serial, r.localSerial, held))
}

// Stats returns what the resolver holds now.
func (r *Resolver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Serial: r.localSerial, Records: len(r.cfg.Local), Members: map[string]MemberStats{}, Queries: r.answers.snapshot()}
	for id, m := range r.members {
		s.Members[id] = MemberStats{Serial: m.serial, Records: len(m.records), LastSync: m.lastSync, Err: m.err}
	}
	return s
}

// Close stops serving and syncing and waits until every goroutine ended.
// It is safe to call more than once. It returns the error that stopped the
// resolver before, if a server failed, and nil otherwise.
func (r *Resolver) Close() error {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Done returns a channel that is closed once the resolver stopped, by
// Close or because a server failed.
func (r *Resolver) Done() <-chan struct{} { return r.done }

// run waits for Close or a failing server, then stops everything.
func (r *Resolver) run() {
	defer close(r.done)
	select {
	case <-r.stop:
	case err := <-r.failed:
		r.log.Error("resolver stopped", "err", err)
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.closed = true
	all := r.servers
	r.servers = nil
	for _, m := range r.members {
		m.cancel()
	}
	r.mu.Unlock()
	for _, srvs := range all {
		srvs.shutdown()
	}
	r.wg.Wait()
}

// nextSerial returns a serial after prev (in RFC 1982 arithmetic): the wall
// clock in milliseconds modulo 2^32, or prev+1 if that is not later. Serials
// thus grow across restarts, and two runs of a resolver almost never reuse
// one.
func nextSerial(prev uint32) uint32 {
	now := uint32(time.Now().UnixMilli())
	if int32(now-prev) > 0 {
		return now
	}
	return prev + 1
}

// signal wakes whoever waits on c, a channel with a buffer of one, without
// blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
