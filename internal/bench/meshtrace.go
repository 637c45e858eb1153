package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/znet/znet/api"
	"github.com/znet/znet/deploy"
	"github.com/znet/znet/lab"
)

// applyClock records when each node's apply returned during a deploy, so
// that a late handshake can be told apart from a late node (issue 17: a
// 100-node mesh took 25 s after an 8 s apply).
type applyClock struct {
	mu   sync.Mutex
	done map[string]time.Time // node id → when its ApplyRaw returned
}

// connect wraps deploy.Connect so that every ApplyRaw is timed.
func (c *applyClock) connect(ref deploy.NodeRef) (deploy.API, error) {
	a, err := deploy.Connect(ref)
	if err != nil {
		return nil, err
	}
	return timedAPI{API: a, id: ref.ID, clock: c}, nil
}

func (c *applyClock) returned(id string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.done[id]
	return t, ok
}

// timedAPI is a node's API whose ApplyRaw reports when it returned.
type timedAPI struct {
	deploy.API
	id    string
	clock *applyClock
}

func (t timedAPI) ApplyRaw(ctx context.Context, data []byte) (r api.ApplyResult, err error) {
	r, err = t.API.ApplyRaw(ctx, data)
	t.clock.mu.Lock()
	if t.clock.done == nil {
		t.clock.done = map[string]time.Time{}
	}
	t.clock.done[t.id] = time.Now()
	t.clock.mu.Unlock()
	return r, err
}

// lateness is the spread of a deploy's handshakes: each node→peer first
// handshake against the deploy's apply return and against the later of the
// two nodes' own apply returns (before that the pair could not handshake).
type lateness struct {
	afterDeploy, afterPair histogram
	// late lists the node→peer handshakes more than lateAfter after the
	// pair's later apply, with that apply's rank (0: first node applied).
	late []string
	// ranks says, per node id, in which order its apply returned.
	ranks map[string]int
}

// lateAfter is the handshake delay past which lateness names the pair.
const lateAfter = 4 * time.Second

// histogram counts durations in whole seconds (negative ones in bucket 0
// as "before").
type histogram struct{ buckets []int }

func (h *histogram) add(d time.Duration) {
	b := max(0, int(d/time.Second)+1)
	if d < 0 {
		b = 0
	}
	for len(h.buckets) <= b {
		h.buckets = append(h.buckets, 0)
	}
	h.buckets[b]++
}

// String lists the non-empty buckets as "<0:N 0-1s:N 1-2s:N ...".
func (h histogram) String() string {
	var parts []string
	for b, n := range h.buckets {
		if n == 0 {
			continue
		}
		if b == 0 {
			parts = append(parts, fmt.Sprintf("<0:%d", n))
			continue
		}
		parts = append(parts, fmt.Sprintf("%d-%ds:%d", b-1, b, n))
	}
	return strings.Join(parts, " ")
}

// measureLateness works out the lateness of what m saw; ids are the nodes
// in m's order.
func measureLateness(m *mesh, ids []string, clock *applyClock) lateness {
	order := slices.Clone(ids)
	slices.SortStableFunc(order, func(a, b string) int {
		ta, _ := clock.returned(a)
		tb, _ := clock.returned(b)
		return ta.Compare(tb)
	})
	l := lateness{ranks: map[string]int{}}
	for r, id := range order {
		l.ranks[id] = r
	}
	for i, seen := range m.first {
		self := ids[i]
		mine, _ := clock.returned(self)
		for peer, t := range seen {
			theirs, _ := clock.returned(peer)
			pair := mine
			if theirs.After(pair) {
				pair = theirs
			}
			l.afterDeploy.add(t.Sub(m.applied))
			l.afterPair.add(t.Sub(pair))
			if t.Sub(pair) > lateAfter {
				l.late = append(l.late, fmt.Sprintf("%s(#%d)→%s(#%d) +%.1fs", self, l.ranks[self], peer, l.ranks[peer], t.Sub(pair).Seconds()))
			}
		}
	}
	slices.Sort(l.late)
	return l
}

// logLateness logs the spread of the handshakes of a lab's deploy.
func logLateness(log *slog.Logger, m *mesh, l *lab.Lab, clock *applyClock) {
	ids := make([]string, len(l.Nodes))
	for i, n := range l.Nodes {
		ids[i] = n.ID
	}
	lt := measureLateness(m, ids, clock)
	log.Info("lab100 handshakes after the deploy's apply returned", "histogram", lt.afterDeploy.String())
	log.Info("lab100 handshakes after the later apply of the pair", "histogram", lt.afterPair.String())
	order := make([]string, len(lt.ranks))
	for id, r := range lt.ranks {
		t, _ := clock.returned(id)
		order[r] = fmt.Sprintf("#%d %s %+.2fs", r, id, t.Sub(m.applied).Seconds())
	}
	log.Info("lab100 apply returns (rank, node, vs the deploy's)", "nodes", strings.Join(order, ", "))
	log.Info("lab100 late handshakes", "count", len(lt.late), "pairs", strings.Join(lt.late, "; "))
	if path := os.Getenv("ZNET_BENCH_TRACE"); path != "" {
		dumpTrace(path, m, l, clock)
	}
}

// dumpTrace writes what the deploy's handshakes were, in absolute times,
// for matching with a packet capture (ZNET_BENCH_TRACE).
func dumpTrace(path string, m *mesh, l *lab.Lab, clock *applyClock) {
	type node struct {
		ID       string               `json:"id"`
		Underlay string               `json:"underlay"`
		Applied  time.Time            `json:"applied"`
		First    map[string]time.Time `json:"first"`
	}
	out := struct {
		Applied time.Time `json:"applied"`
		Nodes   []node    `json:"nodes"`
	}{Applied: m.applied}
	for i, n := range l.Nodes {
		t, _ := clock.returned(n.ID)
		out.Nodes = append(out.Nodes, node{ID: n.ID, Underlay: n.Underlay.String(), Applied: t, First: m.first[i]})
	}
	b, _ := json.Marshal(out)
	_ = os.WriteFile(path, b, 0o644)
}
