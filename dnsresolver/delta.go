package dnsresolver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Deltas: a config of a thousand members is a large document to encode,
// send, decode and check on every change of one of them. So the server
// answers every Config it applied with a version, and a client that knows
// the version and the Config behind it sends only what changed: the
// members added, changed or removed, and the rest of the Config (small) in
// full. The server applies a delta only against the version it is at, and
// refuses it ("stale") otherwise: it restarted, another client pushed in
// between, or it never answered a version (it predates deltas, and then
// the client never sends one). The client then pushes the whole Config.
//
//	{"op": "delta", "delta": {"base": "v", "config": {... no members},
//	  "add": [...], "remove": ["id", ...]}} -> {"version": "w"}

// errStale is the server's answer to a delta against another version than
// the one it holds; the client answers it with a whole Config.
var errStale = errors.New("the resolver holds another config than the change is against")

// configDelta is the change from the Config of version Base: Config in
// full without its members, the members to add or replace (by id) and the
// ids of members to remove.
type configDelta struct {
	Base   string   `json:"base"`
	Config Config   `json:"config"`
	Add    []Member `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// versioned is the server's side: the Config last applied, as received,
// and its version. Updates run under mu, so that a delta is applied to
// the Config its version names.
type versioned struct {
	mu      sync.Mutex
	nonce   string // tells this server's versions from a former one's
	n       uint64
	version string
	cfg     Config
	// lowerIDs: every member id of cfg is in lower case, as normalized
	// makes it, so a delta's ids name the members the resolver holds and
	// it may apply the delta itself (memberUpdater).
	lowerIDs bool
	// changes is the resolver's count of changes after the last one made
	// here (memberUpdater).
	changes uint64
}

func newVersioned() *versioned {
	return &versioned{nonce: strconv.FormatUint(rand.Uint64(), 36)}
}

// full applies cfg to r and returns its version.
func (v *versioned) full(r Controller, cfg Config) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var changes uint64
	var err error
	if mu, ok := r.(memberUpdater); ok {
		changes, err = mu.update(cfg)
	} else {
		err = r.Update(cfg)
	}
	if err != nil {
		return "", err
	}
	return v.appliedLocked(cfg, !slices.ContainsFunc(cfg.Members, notLower), changes), nil
}

// delta applies d to the Config of version d.Base and returns the new
// version; errStale if the server is not at d.Base.
func (v *versioned) delta(r Controller, d configDelta) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.version == "" || d.Base != v.version {
		return "", errStale
	}
	cfg, err := d.applyTo(v.cfg)
	if err != nil {
		return "", err
	}
	lower := v.lowerIDs && !slices.ContainsFunc(d.Add, notLower)
	var changes uint64
	switch mu, ok := r.(memberUpdater); {
	case ok && lower:
		changes, err = mu.updateMembers(cfg, d.Add, d.Remove, v.changes)
	case ok:
		changes, err = mu.update(cfg)
	default:
		err = r.Update(cfg)
	}
	if err != nil {
		return "", err
	}
	return v.appliedLocked(cfg, lower, changes), nil
}

// appliedLocked records that the resolver holds cfg and returns its new
// version.
func (v *versioned) appliedLocked(cfg Config, lowerIDs bool, changes uint64) string {
	v.n++
	v.version = v.nonce + "." + strconv.FormatUint(v.n, 10)
	v.cfg = cfg
	v.lowerIDs = lowerIDs
	v.changes = changes
	return v.version
}

// notLower reports whether m's id is not in lower case.
func notLower(m Member) bool { return strings.ToLower(m.ID) != m.ID }

// applyTo returns base changed by d; errStale if d removes a member base
// does not have.
func (d configDelta) applyTo(base Config) (Config, error) {
	remove := make(map[string]bool, len(d.Remove))
	for _, id := range d.Remove {
		remove[id] = true
	}
	replace := make(map[string]bool, len(d.Add))
	for _, m := range d.Add {
		replace[m.ID] = true
	}
	cfg := d.Config
	cfg.Members = make([]Member, 0, len(base.Members)+len(d.Add))
	removed := 0
	for _, m := range base.Members {
		switch {
		case remove[m.ID]:
			removed++
		case !replace[m.ID]:
			cfg.Members = append(cfg.Members, m)
		}
	}
	if removed != len(remove) {
		return Config{}, fmt.Errorf("removing %d members of which %d are there: %w", len(remove), removed, errStale)
	}
	cfg.Members = append(cfg.Members, d.Add...)
	return cfg, nil
}

// Pushes is a client's memory of what it pushed: by control socket path,
// the version the server answered and the Config it was for, so that the
// next Push to that socket sends only the change. The zero value is
// empty; it is safe for concurrent use and must not be copied. Its owner
// forgets a socket whose resolver is gone (Forget).
type Pushes struct {
	mu       sync.Mutex
	bySocket map[string]pushedConfig
}

type pushedConfig struct {
	version string
	cfg     Config
}

func (p *Pushes) last(sock string) (pushedConfig, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.bySocket[sock]
	return c, ok
}

// remember records that the server at sock holds cfg as version, or
// forgets sock when version is "" (a server without deltas, or a failure).
func (p *Pushes) remember(sock, version string, cfg Config) {
	if version == "" {
		p.Forget(sock)
		return
	}
	cfg.Members = slices.Clone(cfg.Members) // the caller may reuse its slices
	cfg.Local = slices.Clone(cfg.Local)
	cfg.Upstreams = slices.Clone(cfg.Upstreams)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bySocket == nil {
		p.bySocket = map[string]pushedConfig{}
	}
	p.bySocket[sock] = pushedConfig{version: version, cfg: cfg}
}

// Forget drops what was pushed to sock: the next Push sends the whole
// Config. Called when the resolver behind sock is removed.
func (p *Pushes) Forget(sock string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.bySocket, sock)
}

// deltaFrom returns the change from last to cfg; ok is false when cfg
// lists a member id twice (a delta, by id, cannot say that: the server
// must see the whole Config to refuse it).
//
// A push mostly adds or removes a member or two and keeps the others in
// their order, so the members equal at the same places at the head and
// the tail of both lists are kept as they are, and only those between are
// compared by id: indexing a thousand members on every push cost more
// than the rest of it.
func deltaFrom(last pushedConfig, cfg Config) (configDelta, bool) {
	old, now := last.cfg.Members, cfg.Members
	head, tail := sameEnds(old, now)
	if len(now)-head-tail > maxWindow {
		head, tail = 0, 0
	}
	d, ok := memberChanges(old[head:len(old)-tail], now[head:len(now)-tail])
	if !ok {
		return configDelta{}, false
	}
	// A member added between that is also kept at an end is listed twice
	// (the ends hold no id twice: the server took last).
	for _, m := range d.Add {
		if slices.ContainsFunc(old[:head], sameID(m.ID)) || slices.ContainsFunc(old[len(old)-tail:], sameID(m.ID)) {
			return configDelta{}, false
		}
	}
	d.Base, d.Config = last.version, cfg
	d.Config.Members = nil
	return d, true
}

// maxWindow is how many members between equal ends deltaFrom compares by
// scanning the ends for each one added; with more it indexes them all.
const maxWindow = 16

// sameEnds returns how many members a and b have equal at their heads,
// and then at their tails.
func sameEnds(a, b []Member) (head, tail int) {
	for head < len(a) && head < len(b) && a[head] == b[head] {
		head++
	}
	for tail < len(a)-head && tail < len(b)-head && a[len(a)-1-tail] == b[len(b)-1-tail] {
		tail++
	}
	return head, tail
}

// memberChanges returns the members of now that old lacks or has
// otherwise (Add) and the ids of old that now lacks (Remove); ok is false
// when now lists an id twice.
func memberChanges(old, now []Member) (configDelta, bool) {
	var d configDelta
	had := make(map[string]Member, len(old))
	for _, m := range old {
		had[m.ID] = m
	}
	kept := make(map[string]bool, len(now))
	for _, m := range now {
		if kept[m.ID] {
			return configDelta{}, false
		}
		kept[m.ID] = true
		if o, ok := had[m.ID]; !ok || o != m {
			d.Add = append(d.Add, m)
		}
	}
	for _, m := range old {
		if !kept[m.ID] {
			d.Remove = append(d.Remove, m.ID)
		}
	}
	return d, true
}

func sameID(id string) func(Member) bool { return func(m Member) bool { return m.ID == id } }

// pushDelta sends the change from what sock's server last answered to
// cfg; ok is false when there is nothing to send it against or the server
// did not take it, and the caller must push cfg whole.
func (p *Pushes) pushDelta(ctx context.Context, sock string, cfg Config) bool {
	last, ok := p.last(sock)
	if !ok {
		return false
	}
	d, ok := deltaFrom(last, cfg)
	if !ok {
		return false
	}
	resp, err := control(ctx, sock, controlRequest{Op: "delta", Delta: &d})
	if err != nil {
		return false
	}
	p.remember(sock, resp.Version, cfg)
	return true
}
