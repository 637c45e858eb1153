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
