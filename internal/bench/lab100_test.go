package bench

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestMeshAfter(t *testing.T) {
	applied := time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)
	m := &mesh{nodes: 3, applied: applied, errs: make([]error, 3), first: []map[string]time.Time{
		{"n2": applied.Add(-time.Second), "n3": applied.Add(1500 * time.Millisecond)},
		{"n1": applied.Add(-time.Second), "n3": applied.Add(2 * time.Second)},
		{"n1": applied.Add(1500 * time.Millisecond), "n2": applied.Add(2 * time.Second)},
	}}
	seen, want := m.pairs()
	assert.Equal(t, 6, seen)
	assert.Equal(t, 6, want)
	assert.Equal(t, 2*time.Second, m.after(), "the last first handshake")
	assert.NoError(t, m.err())

	row := meshRow(3, time.Second, 3*time.Second, m)
	assert.Equal(t, "met", row.Verdict)
	assert.InDelta(t, 2.0, row.Value, 1e-9)

	early := &mesh{nodes: 2, applied: applied, errs: make([]error, 2), first: []map[string]time.Time{
		{"n2": applied.Add(-time.Second)}, {"n1": applied.Add(-time.Second)},
	}}
	assert.Zero(t, early.after(), "handshakes before the apply returned count as 0")
}

// TestMeshRowMissed checks that a mesh not complete at the deadline is a
// miss with the figures it got, not an error without them.
func TestMeshRowMissed(t *testing.T) {
	applied := time.Now()
	m := &mesh{nodes: 3, applied: applied, first: []map[string]time.Time{
		{"n2": applied}, {"n1": applied}, {},
	}, errs: []error{nil, nil, errors.New("node n3: 0 of 2 handshakes before the deadline")}}
	row := meshRow(3, time.Second, 297*time.Second, m)
	assert.Equal(t, "missed", row.Verdict)
	assert.InDelta(t, 297.0, row.Value, 1e-9, "the wait, a lower bound")
	assert.Contains(t, row.Note, "only 2 of 6 node→peer handshakes 297 s after the apply")
	assert.Contains(t, row.Note, "node n3: 0 of 2 handshakes")
}

func TestLabCPUScaled(t *testing.T) {
	c := labCPU{daemons: time.Second, dataplanes: 3 * time.Second}
	got := c.scaled(time.Minute, 30*time.Second)
	assert.Equal(t, labCPU{daemons: 2 * time.Second, dataplanes: 6 * time.Second}, got)
	assert.Equal(t, 8*time.Second, got.total())
	assert.Equal(t, "znetd 2.00 s, data planes 6.00 s", got.String())
}

func TestMeshDeadline(t *testing.T) {
	assert.Equal(t, 2*time.Minute, meshDeadline(10))
	assert.Equal(t, 5*time.Minute, meshDeadline(100), "long enough at 100 nodes to report how far it got")
}

// TestMeasureLateness checks that each handshake is timed from the later
// of its two nodes' applies, so that a late node is told from a late
// handshake, and that the late ones are named with their apply ranks.
func TestMeasureLateness(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)
	clock := &applyClock{done: map[string]time.Time{"a": t0, "b": t0.Add(2 * time.Second), "c": t0.Add(time.Second)}}
	m := &mesh{nodes: 3, applied: t0.Add(3 * time.Second), first: []map[string]time.Time{
		{"b": t0.Add(2500 * time.Millisecond), "c": t0.Add(7 * time.Second)},
		{"a": t0.Add(2500 * time.Millisecond)},
		{"a": t0.Add(7 * time.Second)},
	}}
	l := measureLateness(m, []string{"a", "b", "c"}, clock)
	assert.Equal(t, map[string]int{"a": 0, "c": 1, "b": 2}, l.ranks)
	assert.Equal(t, "<0:2 4-5s:2", l.afterDeploy.String(), "against the deploy's return")
	assert.Equal(t, "0-1s:2 6-7s:2", l.afterPair.String(), "against the pair's later apply: b applied at 2 s, c at 1 s")
	assert.Equal(t, []string{"a(#0)→c(#1) +6.0s", "c(#1)→a(#0) +6.0s"}, l.late)
}
