package dnsresolver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"github.com/miekg/dns"
)

const (
	// queryTimeout bounds a SOA query to a member.
	queryTimeout = time.Second
	// transferTimeout bounds a whole transfer from a member.
	transferTimeout = 5 * time.Second
	// notifyWait is how long the first NOTIFY waits for its answer; each
	// retry waits twice as long.
	notifyWait = 250 * time.Millisecond
	// notifyTries is how many times a NOTIFY is sent before the member's
	// own polling is left to catch up.
	notifyTries = 5
	// quietStart is how long this node holds back its first packet to a
	// new member whose id sorts below its own, unless a NOTIFY from it
	// shows its tunnel is up first. It must match the daemon's WireGuard
	// stagger (peers.StaggerDelay): of two members only the one whose id
	// sorts lower starts the tunnel, and retries every 5 s until this node
	// is configured; a DNS packet from this node would make it start one
	// too, and two handshakes that cross leave the tunnel down for
	// WireGuard's 5 s retry, again and again while both retry in step.
	quietStart = 10 * time.Second
	// crowdMembers is how many held members (Config.Hold) must start at
	// once (a deploy: a new resolver, or an Update, with that many members
	// new to the apply) for every one of them, whatever its id, to be held back for quietStart and a
	// random part of crowdSpread. A deploy of n nodes starts n·(n-1)
	// first syncs at once, ~40 packets each through two userspace data
	// planes (measured: 200,000 packets in 15 s at 70 nodes, both cores
	// busy); sent while the tunnels handshake, they held each handshake
	// message for seconds and the mesh took 8 s after the apply instead
	// of 3 s. Held back and spread, they come after the handshakes. A
	// few new members cost little, and sync at once as before.
	crowdMembers = 8
	crowdSpread  = 5 * time.Second
	// transferGap is the least time between two transfers from one
	// member (or checks of its serial after a NOTIFY), so that a member
	// sending NOTIFY after NOTIFY cannot keep this node transferring: a
	// NOTIFY that comes sooner is answered by one check when the gap has
	// passed, however many came meanwhile.
	// Short enough that a change still answers everywhere within a second.
	transferGap = 250 * time.Millisecond
	// pollBudget is how many members one resolver polls per
	// Options.PollInterval at most; more members stretch the interval.
	pollBudget = 60
	// recheckInterval and recheckCount: after an Update that left this
	// node's records as they were (an apply on this node; see
	// recheckLocked) each member's serial is checked recheckCount times about
	// recheckInterval apart. That catches what the apply changed on the
	// other side sooner than the slow poll, and it makes every live link
	// carry a packet within seconds of the apply, which is how `znet
	// deploy` sees a link that needed no new handshake is alive.
	recheckInterval = 2 * time.Second
	recheckCount    = 3
	// retryFirst is the wait before the first retry after a failed sync
	// (nextRetry).
	retryFirst = time.Second
)

// member is the sync state of one member: two goroutines (pullLoop and
// notifyLoop) and what they fetched.
type member struct {
	Member
	ctx    context.Context // cancelled when the member leaves or r closes
	cancel context.CancelFunc
	pull   chan struct{} // a NOTIFY came: check the serial now
	push   chan struct{} // this node's records changed: send NOTIFY
	// recheck: an Update came: poll m's serial a few times soon
	// (askRecheck).
	recheck  chan struct{}
	rechecks rechecks
	// quiet: how long to hold back the first packet to this member (0:
	// not at all); a NOTIFY from it ends the wait (see quietFor).
	quiet time.Duration
	// quietOver is closed when pullLoop's quiet start ends (at once when
	// not quiet), so that notifyLoop's first NOTIFY waits for it too,
	// unless this node's records change first.
	quietOver chan struct{}
	// lastAsked is when the last transfer from m, or the last check of
	// its serial after a NOTIFY, started; only
	// pullLoop uses it.
	lastAsked time.Time

	// Guarded by Resolver.mu.
	records  map[string]addrs // name -> addresses, never modified in place
	serial   uint32
	synced   bool // records came from a transfer
	lastSync time.Time
	err      string
}

// startMemberLocked starts syncing with m. prev, if not nil, is the state of
// the same member under other gateways, whose records are kept. crowd says
// that at least crowdMembers held members start at once. Only a member
// r.cfg holds (Config.Hold) may be held back; r.cfg is the Config that
// starts it.
func (r *Resolver) startMemberLocked(m Member, prev *member, crowd bool) {
	ctx, cancel := context.WithCancel(context.Background())
	mm := &member{
		Member:  m,
		ctx:     ctx,
		cancel:  cancel,
		pull:    make(chan struct{}, 1),
		push:    make(chan struct{}, 1),
		recheck: make(chan struct{}, 1),
		quiet:   quietFor(prev == nil && r.cfg.holds(m.ID), crowd, m.ID < r.cfg.NodeID),
	}
	mm.quietOver = make(chan struct{})
	if mm.quiet == 0 {
		close(mm.quietOver)
	}
	if prev != nil {
		mm.records, mm.serial, mm.synced = prev.records, prev.serial, prev.synced
		mm.lastSync, mm.err = prev.lastSync, prev.err
		if m.Subnet4 != prev.Subnet4 || m.Subnet6 != prev.Subnet6 {
			mm.records = ownedRecords(r.cfg, m, prev.records)
		}
	}
	r.members[m.ID] = mm
	r.wg.Add(2)
	go r.pullLoop(mm)
	go r.notifyLoop(mm)
}

// wake makes the goroutine that fetches member id's records transfer them
// at once.
func (r *Resolver) wake(id string) {
	r.mu.Lock()
	m := r.members[id]
	r.mu.Unlock()
	if m != nil {
		signal(m.pull)
	}
}

// recheckLocked makes every member that an Update kept (the same *member
// as in kept) poll its serial a few times soon; members it started sync at
// once anyway. Update calls it only when this node's records did not
// change: when they did, every member gets a NOTIFY and checks back.
func (r *Resolver) recheckLocked(kept map[string]*member) {
	now := monoNow()
	for id, m := range r.members {
		if kept[id] == m {
			m.askRecheck(now)
		}
	}
}

// pullLoop keeps the records of m current: at once, on every NOTIFY from
// m, and when a poll finds m's serial changed. Polls are a fallback for
// lost NOTIFYs, so they are slow (pollDelay), except for a few quick ones
// after each Update (recheck).
func (r *Resolver) pullLoop(m *member) {
	defer r.wg.Done()
	notified, ok := m.waitQuiet(m.pull)
	if !ok {
		return
	}
	if m.quiet > 0 {
		close(m.quietOver)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var quick quickPolls    // quick polls left since the last Update
	pull := true            // sync at the top of the loop
	var retry time.Duration // after a failure: the wait before the next try
	for {
		if pull {
			retry = nextRetry(retry, r.sync(m, notified))
		}
		d := r.pollDelay()
		if retry > 0 {
			d = min(d, jitter(retry))
		}
		d, armed := quick.wait(m, d)
		// Even the first quick poll waits: right after an apply the
		// tunnel may still be handshaking.
		if !armed && quick.asked(m, false) {
			pull = false // an ask that came as m was armed: it sent no signal
			continue
		}
		timer.Reset(d) // since Go 1.23 no stale tick can be left in timer.C
		pull = true
		select {
		case <-m.ctx.Done():
			return
		case <-m.pull:
			notified = true
			quick.asked(m, false)
		case <-timer.C:
			notified = false
			if armed && quick.asked(m, false) {
				pull = false // the poll this timer was for moved (askRecheck)
			}
		case <-m.recheck:
			quick.asked(m, true)
			pull = false
		}
	}
}

// nextRetry returns how long to wait before talking to a member again
// after a sync that ended with err, when the wait after the one before was
// prev: 0 (the usual poll) after a success, else retryFirst, doubling. A
// member that could not be reached (at a deploy: not configured yet, or
// its tunnel not up) is thus tried again within seconds, not at the slow
// poll, and one that stays down costs a few packets a minute.
func nextRetry(prev time.Duration, err error) time.Duration {
	if err == nil {
		return 0
	}
	return min(max(retryFirst, 2*prev), time.Hour) // bounded: no overflow
}

// pollDelay returns how long a member's fallback poll waits:
// Options.PollInterval, stretched so that this node polls at most
// pollBudget members per PollInterval however many members it has (a
// 100-member network polls 99 members, not 99 every 2 s), with jitter so
// that the members' polls do not fall on the same instant.
func (r *Resolver) pollDelay() time.Duration {
	r.mu.Lock()
	n := len(r.members)
	r.mu.Unlock()
	d := r.opts.PollInterval
	if n > pollBudget {
		d = d * time.Duration(n) / pollBudget
	}
	return jitter(d)
}

// jitter returns d ± 25 %, at random.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d*3/4 + rand.N(d/2+1)
}

// sync brings m's records up to date: it transfers them if none were
// fetched yet, or if m's serial (an SOA query) differs from the one held.
// As in RFC 1996, a NOTIFY (notified) is a reason to check, not proof of a
// change: at a deploy a member's NOTIFY often follows the transfer this
// node just made, and a check costs two datagrams where a transfer costs a
// TCP connection. After a NOTIFY it first waits out transferGap, so that a
// member sending NOTIFY after NOTIFY makes this node ask at most once per
// gap. It returns the error talking to m, if any.
func (r *Resolver) sync(m *member, notified bool) error {
	if notified {
		if !m.waitGap() {
			return nil
		}
		m.lastAsked = time.Now()
		drain(m.pull) // this check covers every NOTIFY that came before it
	}
	r.mu.Lock()
	synced, held := m.synced, m.serial
	r.mu.Unlock()
	if synced {
		serial, err := r.querySerial(m)
		if err != nil || serial == held {
			r.recordSync(m, nil, 0, err)
			return err
		}
	}
	if !notified && !m.waitGap() {
		return nil
	}
	drain(m.pull) // this transfer covers every NOTIFY that came before it
	m.lastAsked = time.Now()
	records, serial, err := r.transfer(m)
	r.recordSync(m, records, serial, err)
	return err
}

// drain empties c, a channel with a buffer of one.
func drain(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}

// waitGap waits until transferGap has passed since m's last transfer or
// check after a NOTIFY; false when m left meanwhile.
func (m *member) waitGap() bool {
	d := time.Until(m.lastAsked.Add(transferGap))
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-m.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ownedRecords returns the records of held whose addresses m owns in the
// network of cfg (Member.owns), in a new map; held is not modified.
func ownedRecords(cfg Config, m Member, held map[string]addrs) map[string]addrs {
	out := make(map[string]addrs, len(held))
	for name, a := range held {
		var kept addrs
		for _, x := range append(slices.Clone(a.v4), a.v6...) {
			if m.owns(cfg, x) {
				kept.add(x)
			}
		}
		if len(kept.v4)+len(kept.v6) > 0 {
			out[name] = kept
		}
	}
	return out
}

// recordSync records the outcome of talking to m: an error, a serial check
// (records nil) or a transfer. Nothing is kept for a member that left
// meanwhile.
func (r *Resolver) recordSync(m *member, records map[string]addrs, serial uint32, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members[m.ID] != m {
		return
	}
	if err != nil {
		if m.err == "" {
			r.log.Warn("member unreachable, keeping its records", "member", m.ID, "err", err)
		}
		m.err = err.Error()
		return
	}
	if m.err != "" {
		r.log.Info("member reachable again", "member", m.ID)
	}
	m.err = ""
	m.lastSync = time.Now()
	if records == nil {
		return
	}
	before := m.records
	m.records, m.serial, m.synced = records, serial, true
	r.publishMembersLocked([]memberPatch{{id: m.ID, before: before, after: records}})
}

// notifyLoop announces this node's records to m: at once (m may have just
// started or just learnt of this node) and after every change.
func (r *Resolver) notifyLoop(m *member) {
	defer r.wg.Done()
	// A change of this node's records (an attach) is announced at once
	// even during the quiet start: a user waits for it.
	select {
	case <-m.ctx.Done():
		return
	case <-m.quietOver:
	case <-m.push:
	}
	for {
		if !r.announce(m) {
			select {
			case <-m.ctx.Done():
				return
			case <-m.push:
			}
		}
		if m.ctx.Err() != nil {
			return
		}
	}
}

// announce sends NOTIFY to m until m acknowledges it, m leaves, or
// notifyTries were sent. again reports that another change came meanwhile,
// so announcing starts over.
func (r *Resolver) announce(m *member) (again bool) {
	if r.dropNotify.Load() {
		return false
	}
	wait := notifyWait
	for range notifyTries {
		start := time.Now()
		err := r.sendNotify(m, wait)
		if err == nil {
			return false
		}
		r.log.Debug("notify unanswered", "member", m.ID, "err", err)
		timer := time.NewTimer(time.Until(start.Add(wait)))
		select {
		case <-m.ctx.Done():
			timer.Stop()
			return false
		case <-m.push:
			timer.Stop()
			return true
		case <-timer.C:
		}
		wait *= 2
	}
	return false
}

// sendNotify sends one NOTIFY for this node's transfer zone to m and waits
// up to timeout for its acknowledgement.
func (r *Resolver) sendNotify(m *member, timeout time.Duration) error {
	r.mu.Lock()
	zone := r.cfg.localZone(r.cfg.NodeID)
	r.mu.Unlock()
	q := new(dns.Msg)
	q.SetNotify(zone)
	resp, err := r.exchange(m, q, timeout)
	if err != nil {
		return err
	}
	if resp.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("notifying %s: %s", m.ID, dns.RcodeToString[resp.Rcode])
	}
	return nil
}

// querySerial asks m for the serial of its transfer zone.
func (r *Resolver) querySerial(m *member) (uint32, error) {
	r.mu.Lock()
	zone := r.cfg.localZone(m.ID)
	r.mu.Unlock()
	q := new(dns.Msg)
	q.SetQuestion(zone, dns.TypeSOA)
	q.RecursionDesired = false
	resp, err := r.exchange(m, q, queryTimeout)
	if err != nil {
		return 0, err
	}
	if resp.Rcode != dns.RcodeSuccess {
		return 0, fmt.Errorf("asking %s for its serial: %s", m.ID, dns.RcodeToString[resp.Rcode])
	}
	for _, rr := range resp.Answer {
		if soa, ok := rr.(*dns.SOA); ok && dns.CanonicalName(soa.Hdr.Name) == zone {
			return soa.Serial, nil
		}
	}
	return 0, fmt.Errorf("asking %s for its serial: no SOA for %s in the answer", m.ID, zone)
}

// exchange sends q to m over UDP and returns the answer with q's id, waiting
// up to timeout; it gives up at once when m leaves.
func (r *Resolver) exchange(m *member, q *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(m.ctx, timeout)
	defer cancel()
	conn, err := r.dial(ctx, "udp", m.Member)
	if err != nil {
		return nil, err
	}
	co := openConn(ctx, conn)
	defer func() { _ = co.Close() }()
	if err := co.WriteMsg(q); err != nil {
		return nil, fmt.Errorf("sending to %s: %w", m.ID, err)
	}
	for {
		resp, err := co.ReadMsg()
		if err != nil {
			return nil, fmt.Errorf("reading from %s: %w", m.ID, ctxErr(ctx, err))
		}
		if resp.Id == q.Id && resp.Response {
			return resp, nil
		}
	}
}

// transfer fetches m's transfer zone over TCP.
func (r *Resolver) transfer(m *member) (map[string]addrs, uint32, error) {
	ctx, cancel := context.WithTimeout(m.ctx, transferTimeout)
	defer cancel()
	r.mu.Lock()
	cfg := r.cfg
	r.mu.Unlock()
	conn, err := r.dial(ctx, "tcp", m.Member)
	if err != nil {
		return nil, 0, err
	}
	co := openConn(ctx, conn)
	defer func() { _ = co.Close() }()
	q := new(dns.Msg)
	q.SetAxfr(cfg.localZone(m.ID))
	if err := co.WriteMsg(q); err != nil {
		return nil, 0, fmt.Errorf("asking %s for a transfer: %w", m.ID, err)
	}
	tr := newTransferReader(cfg, m.Member)
	for !tr.done {
		resp, err := co.ReadMsg()
		if err != nil {
			return nil, 0, fmt.Errorf("transfer from %s: %w", m.ID, ctxErr(ctx, err))
		}
		if resp.Id != q.Id {
			return nil, 0, fmt.Errorf("transfer from %s: answer to another query", m.ID)
		}
		if resp.Rcode != dns.RcodeSuccess {
			return nil, 0, fmt.Errorf("transfer from %s: %s", m.ID, dns.RcodeToString[resp.Rcode])
		}
		if err := tr.add(resp.Answer); err != nil {
			return nil, 0, fmt.Errorf("transfer from %s: %w", m.ID, err)
		}
	}
	if tr.foreign > 0 {
		r.log.Warn("member published addresses outside its subnets; skipped", "member", m.ID, "addresses", tr.foreign)
	}
	return tr.records, tr.serial, nil
}

// openConn wraps conn for DNS messages; conn's deadline is ctx's, and conn
// is closed as soon as ctx is done. Closing the result releases both.
func openConn(ctx context.Context, conn net.Conn) *ctxConn {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	return &ctxConn{Conn: &dns.Conn{Conn: conn}, stop: stop}
}

// ctxErr returns ctx's error if it is done (the real reason a read on a
// connection openConn closed failed), err otherwise.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// ctxConn is a dns.Conn tied to a context by openConn.
type ctxConn struct {
	*dns.Conn
	stop func() bool
}

// Close stops watching the context and closes the connection.
func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// quietFor returns how long to hold back the first packet to a member: a
// member already synced under other gateways, or not held by the Config
// (not fresh), not at all; one
// started in a crowd quietStart plus a random part of crowdSpread; one
// whose id sorts below this node's (lower) quietStart; others not at all.
func quietFor(fresh, crowd, lower bool) time.Duration {
	switch {
	case !fresh:
		return 0
	case crowd:
		return quietStart + rand.N(crowdSpread)
	case lower:
		return quietStart
	}
	return 0
}

// waitQuiet waits out m's quiet start, if it has one. A signal on wake (a
// NOTIFY from m: its tunnel is up) ends the wait early and is reported as
// woke. ok is false when m left meanwhile.
func (m *member) waitQuiet(wake <-chan struct{}) (woke, ok bool) {
	if m.quiet == 0 {
		return false, true
	}
	t := time.NewTimer(m.quiet)
	defer t.Stop()
	select {
	case <-m.ctx.Done():
		return false, false
	case <-wake:
		return true, true
	case <-t.C:
		return false, true
	}
}
