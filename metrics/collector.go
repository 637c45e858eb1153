package metrics

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/znet/znet/api"
)

// Source is the daemon as the Collector reads it; *daemon.Daemon is one.
// Its methods are called concurrently, from the scrape and from one read
// goroutine per network.
type Source interface {
	// Networks lists the node's networks from its state, without asking
	// any data plane, so that it is quick.
	Networks(ctx context.Context) ([]api.NetworkSummary, error)
	// Status reads one network's live state; it is as slow as the
	// network's data plane.
	Status(ctx context.Context, network string) ([]api.NetworkStatus, error)
	// AccessPeers lists a network's access peers from the state.
	AccessPeers(ctx context.Context, network string) ([]api.AccessPeer, error)
	// DataplaneRestarts returns how many times the network's data plane
	// was restarted after it died, from what the daemon knows (it never
	// asks the data plane, so it never blocks); ok is false when no data
	// plane of the network is watched (not applied, kernel backend).
	DataplaneRestarts(network string) (restarts int, ok bool)
}

// Options tune a Collector; the zero value of each field means its default.
type Options struct {
	// Backend is the backend label of znet_network_info ("kernel",
	// "userspace").
	Backend string
	// Peers adds the per-peer series (they grow with networks × members).
	Peers bool
	// Deadline is how long a scrape waits for the networks' live state;
	// default 500 ms, so that a scrape answers within a second.
	Deadline time.Duration
	// ReadTimeout bounds one network's read, which goes on after a scrape
	// gave up waiting; default 30 s.
	ReadTimeout time.Duration
	// Parallel is how many networks are read at once; default 16.
	Parallel int
	// ResidentBytes returns the resident memory of a data-plane process;
	// default: VmRSS from /proc/PID/status.
	ResidentBytes func(pid int) (uint64, error)
	// Now is the clock that decides whether a handshake is recent;
	// default time.Now.
	Now func() time.Time
}

// handshakeUp is how recent a member's last handshake must be for the
// peer to count as up (WireGuard re-keys every 2 minutes while traffic
// flows, and keepalives make traffic flow); `znet status` uses the same.
const handshakeUp = 3 * time.Minute

// sample is what one read of a network's live state gave.
type sample struct {
	status api.NetworkStatus
	access int
	rss    uint64 // 0: no data-plane process, or unreadable
}

// entry is what the collector keeps of one network between scrapes.
type entry struct {
	summary api.NetworkSummary
	last    *sample       // the last good read; nil before one
	failed  bool          // the latest finished read failed
	reading chan struct{} // non-nil while a read runs; closed when it ends
}

// Collector is a prometheus.Collector of the networks of one node. Its
// methods are safe for concurrent use. It owns the read goroutines; Close
// stops them.
type Collector struct {
	src    Source
	opts   Options
	errors prometheus.Counter
	sem    chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	nets map[string]*entry
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector reading src.
func NewCollector(src Source, opts Options) *Collector {
	if opts.Deadline <= 0 {
		opts.Deadline = 500 * time.Millisecond
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 30 * time.Second
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 16
	}
	if opts.ResidentBytes == nil {
		opts.ResidentBytes = residentBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Collector{
		src:  src,
		opts: opts,
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "znet_scrape_errors_total",
			Help: "Reads of a network's state that failed or missed the scrape's deadline (its last known values were served).",
		}),
		sem:    make(chan struct{}, opts.Parallel),
		ctx:    ctx,
		cancel: cancel,
		nets:   map[string]*entry{},
	}
}

// Close cancels the reads in flight and waits for them until ctx ends; a
// scrape after Close serves the last values and starts no read. It is safe
// to call more than once.
func (c *Collector) Close(ctx context.Context) error {
	c.cancel()
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
	c.errors.Describe(ch)
}

// Collect implements prometheus.Collector: it starts a read of every
// network that has none running, waits for them until the deadline, and
// sends every network's latest values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.Deadline)
	defer cancel()
	nets, err := c.src.Networks(ctx)
	if err != nil {
		c.errors.Inc()
		nets = nil
	}
	waits := c.start(nets, err == nil)
	for _, done := range waits {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	now := c.opts.Now()
	for _, e := range c.snapshot() {
		if e.reading != nil || e.failed {
			c.errors.Inc()
		}
		c.emit(ch, e, now)
		if n, ok := c.src.DataplaneRestarts(e.summary.Name); ok {
			ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(n), e.summary.Name)
		}
	}
	ch <- c.errors
}

// start records nets (when listed, forgetting networks that are gone),
// starts a read of each network that has none running, and returns the
// channels of the reads the scrape waits for.
func (c *Collector) start(nets []api.NetworkSummary, listed bool) []chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if listed {
		seen := make(map[string]bool, len(nets))
		for _, n := range nets {
			seen[n.Name] = true
			e, ok := c.nets[n.Name]
			if !ok {
				e = &entry{}
				c.nets[n.Name] = e
			}
			e.summary = n
		}
		for name := range c.nets {
			if !seen[name] {
				delete(c.nets, name) // a read in flight finishes into the dropped entry
			}
		}
	}
	waits := make([]chan struct{}, 0, len(c.nets))
	closed := c.ctx.Err() != nil // after Close, no read starts
	for name, e := range c.nets {
		if e.reading == nil && !closed {
			e.reading = make(chan struct{})
			c.wg.Add(1)
			go c.read(name, e, e.reading)
		}
		if e.reading != nil {
			waits = append(waits, e.reading)
		}
	}
	return waits
}

// snapshot returns a copy of every entry, sorted by name.
func (c *Collector) snapshot() []entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]entry, 0, len(c.nets))
	for _, e := range c.nets {
		out = append(out, *e)
	}
	sortEntries(out)
	return out
}

// read reads network name into e, then closes done.
func (c *Collector) read(name string, e *entry, done chan struct{}) {
	defer c.wg.Done()
	s, err := c.readNetwork(name)
	c.mu.Lock()
	if err == nil {
		e.last = s
	}
	e.failed = err != nil
	e.reading = nil
	c.mu.Unlock()
	close(done)
}

// readNetwork reads one network's live state, waiting for a free slot
// first.
func (c *Collector) readNetwork(name string) (*sample, error) {
	select {
	case c.sem <- struct{}{}:
	case <-c.ctx.Done():
		return nil, c.ctx.Err()
	}
	defer func() { <-c.sem }()
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.ReadTimeout)
	defer cancel()
	sts, err := c.src.Status(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(sts) != 1 {
		return nil, errNoStatus
	}
	if unread(sts[0]) {
		return nil, errDeviceUnread
	}
	acc, err := c.src.AccessPeers(ctx, name)
	if err != nil {
		return nil, err
	}
	s := &sample{status: sts[0], access: len(acc)}
	if pid := s.status.PID; pid > 0 {
		// A data plane that just went has no memory to report; its
		// status says what happened.
		s.rss, _ = c.opts.ResidentBytes(pid)
	}
	return s, nil
}

// unread reports whether st says nothing about its device: an applied
// network without a single peer and with a problem (its data plane did
// not answer in time, is gone, or its namespace is). Taking that for a
// reading would drop the byte counters to 0 and back, which Prometheus
// counts as a reset and a burst of traffic; the last values stay instead.
// A network whose spec has no other member shows no problem.
func unread(st api.NetworkStatus) bool {
	return st.Generation > 0 && len(st.Peers) == 0 && len(st.Problems) > 0
}

// isAccess reports whether a status peer is an access peer (a person's
// device) rather than a member node.
func isAccess(p api.PeerStatus) bool { return strings.HasPrefix(p.Name, "access/") }
