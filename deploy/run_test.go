package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/deploy"
	"github.com/znet/znet/deploy/deploytest"
	"github.com/znet/znet/spec"
)

var _ deploy.API = (*deploytest.Node)(nil)

// grid is a set of fake nodes that deploy reaches by their API URL.
type grid struct {
	nodes map[string]*deploytest.Node // by API URL
	num   map[string]byte             // node id -> its number
	opts  deploy.Options
}

func newGrid(t *testing.T) *grid {
	g := &grid{nodes: map[string]*deploytest.Node{}, num: map[string]byte{}}
	g.opts = deploy.Options{StateDir: t.TempDir(), PollInterval: time.Millisecond}
	g.opts.Connect = func(ref deploy.NodeRef) (deploy.API, error) {
		if n := g.nodes[ref.API]; n != nil {
			return n, nil
		}
		return nil, fmt.Errorf("no fake node at %s", ref.API)
	}
	return g
}

func apiOf(id string) string { return "unix:///fake/" + id + ".sock" }

// add makes fake node id with number n (key apitest.Key(n), endpoint
// 198.18.0.n).
func (g *grid) add(id string, n byte) *deploytest.Node {
	node := deploytest.NewNode(id, n)
	g.nodes[apiOf(id)], g.num[id] = node, n
	return node
}

// deployment is network "demo" (10.30.0.0/16) over ids; an id starting
// with "h" is hidden.
func (g *grid) deployment(ids ...string) *deploy.Deployment {
	d := &deploy.Deployment{Name: "demo", IPRange: netip.MustParsePrefix("10.30.0.0/16")}
	for _, id := range ids {
		ref := deploy.NodeRef{ID: id, API: apiOf(id)}
		if strings.HasPrefix(id, "h") {
			ref.Hidden = true
		} else {
			ref.EndpointHost = fmt.Sprintf("198.18.0.%d", g.num[id])
		}
		d.Nodes = append(d.Nodes, ref)
	}
	return d
}

func (g *grid) run(t *testing.T, d *deploy.Deployment) *deploy.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	res, err := deploy.Run(ctx, d, g.opts)
	require.NoError(t, err)
	return res
}

// resultText renders a result one node a line.
func resultText(r *deploy.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "generation %d\n", r.Generation)
	for _, n := range r.Nodes {
		line := n.ID
		if n.Removed {
			line += " removed"
		}
		if n.Subnet.IsValid() {
			line += " " + n.Subnet.String()
		}
		if n.Applied {
			line += " applied"
		}
		if n.Status != nil {
			line += fmt.Sprintf(" status(gen %d, %d peers)", n.Status.Generation, len(n.Status.Peers))
		}
		if n.Err != nil {
			line += " error: " + n.Err.Error()
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// specText renders a spec's members one a line.
func specText(s *spec.Spec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "generation %d\n", s.Generation)
	for _, n := range s.Nodes {
		ep := n.Endpoint
		if ep == "" {
			ep = "hidden"
		}
		fmt.Fprintf(&b, "%s %s %s %s\n", n.ID, n.Subnet, ep, n.PublicKey[:4])
	}
	return b.String()
}

func TestFirstDeploy(t *testing.T) {
	g := newGrid(t)
	nodes := []*deploytest.Node{g.add("node1", 1), g.add("node2", 2), g.add("h3", 3)}
	res := g.run(t, g.deployment("node1", "node2", "h3"))
	require.NoError(t, res.Err())
	assert.Equal(t, "generation 1\n"+
		"node1 10.30.0.0/24 applied status(gen 1, 2 peers)\n"+
		"node2 10.30.1.0/24 applied status(gen 1, 2 peers)\n"+
		"h3 10.30.2.0/24 applied status(gen 1, 2 peers)\n", resultText(res))
	want := "generation 1\n" +
		"h3 10.30.2.0/24 hidden AwMD\n" +
		"node1 10.30.0.0/24 198.18.0.1:40100 AQEB\n" +
		"node2 10.30.1.0/24 198.18.0.2:40200 AgIC\n"
	assert.Equal(t, want, specText(res.Spec))
	for _, n := range nodes {
		got := n.Spec("demo")
		require.NotNil(t, got, n.ID())
		assert.True(t, got.Equal(res.Spec), "%s has another spec", n.ID())
	}
	assert.Equal(t, spec.DeriveULA("demo"), res.Spec.IPv6Range)
	assert.Zero(t, res.Spec.MTU, "left for each node to derive from its underlay")

	// The same deployment again converges: a new generation, same plan.
	res = g.run(t, g.deployment("h3", "node2", "node1"))
	require.NoError(t, res.Err())
	assert.Equal(t, strings.Replace(want, "generation 1", "generation 2", 1), specText(res.Spec))
	assert.Equal(t, uint64(2), nodes[0].Spec("demo").Generation)
}

// TestPlanning follows a network through removals and additions.
func TestPlanning(t *testing.T) {
	g := newGrid(t)
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		g.add(id, byte(i+1))
	}
	steps := []struct {
		name  string
		nodes []string
		want  string // spec, then the result
	}{
		{"first", []string{"a", "b", "c"}, "generation 1\n" +
			"a 10.30.0.0/24 198.18.0.1:40100 AQEB\n" +
			"b 10.30.1.0/24 198.18.0.2:40200 AgIC\n" +
			"c 10.30.2.0/24 198.18.0.3:40300 AwMD\n" +
			"--\n" +
			"generation 1\n" +
			"a 10.30.0.0/24 applied status(gen 1, 2 peers)\n" +
			"b 10.30.1.0/24 applied status(gen 1, 2 peers)\n" +
			"c 10.30.2.0/24 applied status(gen 1, 2 peers)\n"},
		// b leaves while e joins: b's subnet is still taken in this generation.
		{"remove b, add e", []string{"e", "c", "a"}, "generation 2\n" +
			"a 10.30.0.0/24 198.18.0.1:40100 AQEB\n" +
			"c 10.30.2.0/24 198.18.0.3:40300 AwMD\n" +
			"e 10.30.3.0/24 198.18.0.5:40500 BQUF\n" +
			"--\n" +
			"generation 2\n" +
			"e 10.30.3.0/24 applied status(gen 2, 2 peers)\n" +
			"c 10.30.2.0/24 applied status(gen 2, 2 peers)\n" +
			"a 10.30.0.0/24 applied status(gen 2, 2 peers)\n" +
			"b removed\n"},
		// Now b's subnet is free: the next new node gets it.
		{"add d", []string{"a", "c", "e", "d"}, "generation 3\n" +
			"a 10.30.0.0/24 198.18.0.1:40100 AQEB\n" +
			"c 10.30.2.0/24 198.18.0.3:40300 AwMD\n" +
			"d 10.30.1.0/24 198.18.0.4:40400 BAQE\n" +
			"e 10.30.3.0/24 198.18.0.5:40500 BQUF\n" +
			"--\n" +
			"generation 3\n" +
			"a 10.30.0.0/24 applied status(gen 3, 3 peers)\n" +
			"c 10.30.2.0/24 applied status(gen 3, 3 peers)\n" +
			"e 10.30.3.0/24 applied status(gen 3, 3 peers)\n" +
			"d 10.30.1.0/24 applied status(gen 3, 3 peers)\n"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			res := g.run(t, g.deployment(st.nodes...))
			require.NoError(t, res.Err())
			assert.Equal(t, st.want, specText(res.Spec)+"--\n"+resultText(res))
		})
	}
	b := g.nodes[apiOf("b")]
	assert.False(t, b.Has("demo"), "the network is still on the removed node")
	assert.Contains(t, b.Calls(), "DeleteNetwork(demo, true)")
	assert.Equal(t, uint64(3), g.nodes[apiOf("a")].Spec("demo").Generation)
}

// applyLog is the order in which nodes' applies start and end, shared by
// every node of a grid.
type applyLog struct {
	mu    sync.Mutex
	lines []string
}

// loggedAPI notes when an apply starts and when it returns.
type loggedAPI struct {
	deploy.API
	id  string
	log *applyLog
}

func (a loggedAPI) note(what string) {
	a.log.mu.Lock()
	defer a.log.mu.Unlock()
	a.log.lines = append(a.log.lines, what+" "+a.id)
}

func (a loggedAPI) ApplyRaw(ctx context.Context, data []byte) (api.ApplyResult, error) {
	a.note("start")
	time.Sleep(5 * time.Millisecond) // long enough for a parallel apply to start meanwhile
	defer a.note("end")
	return a.API.ApplyRaw(ctx, data)
}

// TestHiddenAppliedLast: a hidden node starts its handshakes as soon as it
// is configured, so it is configured only after every public node answered
// (an initiation to a node that does not know it yet waits 5 s for
// WireGuard's retry).
func TestHiddenAppliedLast(t *testing.T) {
	g := newGrid(t)
	log := &applyLog{}
	connect := g.opts.Connect
	g.opts.Connect = func(ref deploy.NodeRef) (deploy.API, error) {
		a, err := connect(ref)
		return loggedAPI{API: a, id: ref.ID, log: log}, err
	}
	for i, id := range []string{"ha", "b", "hc", "d"} {
		g.add(id, byte(i+1))
	}
	require.NoError(t, g.run(t, g.deployment("ha", "b", "hc", "d")).Err())
	require.Len(t, log.lines, 8)
	first, last := log.lines[:4], log.lines[4:]
	slices.Sort(first)
	slices.Sort(last)
	assert.Equal(t, []string{"end b", "end d", "start b", "start d"}, first, "the public nodes, in parallel: %v", log.lines)
	assert.Equal(t, []string{"end ha", "end hc", "start ha", "start hc"}, last, "then the hidden ones: %v", log.lines)
}

func TestGenerationFollowsTheNewest(t *testing.T) {
	g := newGrid(t)
	g.add("a", 1)
	g.add("b", 2)
	for range 3 {
		g.run(t, g.deployment("a", "b"))
	}
	// b loses its state and comes back with a new key: it keeps its
	// subnet (from a's spec), and the generation goes on from a's.
	b := g.add("b", 7)
	res := g.run(t, g.deployment("a", "b"))
	require.NoError(t, res.Err())
	assert.Equal(t, "generation 4\n"+
		"a 10.30.0.0/24 198.18.0.1:40100 AQEB\n"+
		"b 10.30.1.0/24 198.18.0.7:40700 BwcH\n", specText(res.Spec))
	assert.Equal(t, uint64(4), b.Spec("demo").Generation)
}

func TestLeftOutNode(t *testing.T) {
	t.Run("unreachable at first, deleted on a later run", func(t *testing.T) {
		g := newGrid(t)
		g.add("a", 1)
		b := g.add("b", 2)
		g.add("c", 3)
		g.run(t, g.deployment("a", "b", "c"))

		b.SetErr("Network", errors.New("connection refused"))
		res := g.run(t, g.deployment("a", "c"))
		assert.Equal(t, "generation 2\n"+
			"a 10.30.0.0/24 applied status(gen 2, 1 peers)\n"+
			"c 10.30.2.0/24 applied status(gen 2, 1 peers)\n"+
			"b removed error: deleting demo (left out of the file): connection refused; if node b is gone for good, deploy again with --forget b\n", resultText(res))
		assert.True(t, b.Has("demo"))
		_, inSpec := g.nodes[apiOf("a")].Spec("demo").Node("b")
		assert.False(t, inSpec, "a still peers with b")
		assert.Equal(t, uint64(1), b.Spec("demo").Generation, "b was sent the new spec")

		// b is remembered, so the next run finds it again.
		b.SetErr("Network", nil)
		res = g.run(t, g.deployment("a", "c"))
		require.NoError(t, res.Err())
		assert.Contains(t, resultText(res), "b removed\n")
		assert.False(t, b.Has("demo"))
		// And forgotten once it is done.
		res = g.run(t, g.deployment("a", "c"))
		assert.NotContains(t, resultText(res), "b removed")
		record, err := os.ReadFile(filepath.Join(g.opts.StateDir, "demo.json"))
		require.NoError(t, err)
		assert.NotContains(t, string(record), `"b"`)
	})
	t.Run("no record: named, not touched", func(t *testing.T) {
		g := newGrid(t)
		g.opts.StateDir = ""
		g.add("a", 1)
		b := g.add("b", 2)
		g.run(t, g.deployment("a", "b"))
		res := g.run(t, g.deployment("a"))
		assert.Equal(t, "generation 2\n"+
			"a 10.30.0.0/24 applied status(gen 2, 0 peers)\n"+
			"b removed error: left out of the file, but its API is not in the deploy record; delete the network on it by hand\n", resultText(res))
		assert.True(t, b.Has("demo"))
	})
	t.Run("the same znetd under another id is left alone", func(t *testing.T) {
		g := newGrid(t)
		g.add("a", 1)
		g.add("b", 2)
		g.run(t, g.deployment("a", "b"))
		// The operator renames b to b2 (same API): b must not be deleted,
		// since that would delete b2's network.
		d := g.deployment("a", "b")
		d.Nodes[1].ID = "b2"
		g.nodes[apiOf("b")] = deploytest.NewNode("b2", 2)
		res := g.run(t, d)
		require.NoError(t, res.Err())
		assert.NotContains(t, resultText(res), "removed")
		assert.True(t, g.nodes[apiOf("b")].Has("demo"))
	})
	t.Run("an API that now serves another node is left alone", func(t *testing.T) {
		g := newGrid(t)
		g.add("a", 1)
		b := g.add("b", 2)
		g.run(t, g.deployment("a", "b"))
		other := deploytest.NewNode("zz", 9)
		_, err := other.Reserve(t.Context(), "demo")
		require.NoError(t, err)
		g.nodes[apiOf("b")] = other
		res := g.run(t, g.deployment("a"))
		assert.Contains(t, resultText(res), `b removed error: the znetd at unix:///fake/b.sock is now node "zz", not "b"`)
		assert.True(t, other.Has("demo"))
		assert.True(t, b.Has("demo"))
	})
}

// TestForget covers a left-out node that is gone for good: every deploy
// fails naming it until the operator forgets it; then it is dropped from
// the record without being contacted.
func TestForget(t *testing.T) {
	g := newGrid(t)
	a := g.add("a", 1)
	b := g.add("b", 2)
	g.run(t, g.deployment("a", "b"))
	b.SetErr("Network", errors.New("dial unix /fake/b.sock: connect: no such file or directory")) // the machine is gone

	for range 2 {
		res := g.run(t, g.deployment("a"))
		assert.Contains(t, resultText(res), "b removed error: deleting demo (left out of the file): dial unix /fake/b.sock: "+
			"connect: no such file or directory; if node b is gone for good, deploy again with --forget b\n")
		require.Error(t, res.Err())
	}
	bCalls := len(b.Calls())

	t.Run("refused before anything is applied", func(t *testing.T) {
		calls := len(a.Calls())
		for _, tt := range []struct{ forget, want string }{
			{"B!", `forget: "B!": `},
			{"a", "forget: a is in the deployment file; take it out of the file to remove it"},
			{"x", "forget: x is not a member of demo and not in its deploy record: nothing to forget"},
		} {
			opts := g.opts
			opts.Forget = []string{tt.forget}
			_, err := deploy.Run(t.Context(), g.deployment("a"), opts)
			require.ErrorIs(t, err, deploy.ErrInvalid, tt.forget)
			assert.Contains(t, err.Error(), tt.want)
		}
		for _, c := range a.Calls()[calls:] {
			assert.False(t, strings.HasPrefix(c, "Apply"), "applied after all: %s", c)
		}
	})

	g.opts.Forget = []string{"b"}
	res := g.run(t, g.deployment("a"))
	require.NoError(t, res.Err())
	require.Len(t, res.Nodes, 2)
	assert.Equal(t, deploy.NodeResult{ID: "b", Removed: true, Forgotten: true}, res.Nodes[1])
	record, err := os.ReadFile(filepath.Join(g.opts.StateDir, "demo.json"))
	require.NoError(t, err)
	assert.NotContains(t, string(record), `"b"`)
	assert.Equal(t, uint64(4), a.Spec("demo").Generation)

	// Forgotten for good: the next deploys do not look for b.
	g.opts.Forget = nil
	res = g.run(t, g.deployment("a"))
	require.NoError(t, res.Err())
	assert.Equal(t, "generation 5\na 10.30.0.0/24 applied status(gen 5, 0 peers)\n", resultText(res))
	assert.Len(t, b.Calls(), bCalls, "b was contacted after it was forgotten")
	assert.True(t, b.Has("demo"), "a forgotten node keeps what it has")
}

func TestFailingNode(t *testing.T) {
	g := newGrid(t)
	a, b, c := g.add("a", 1), g.add("b", 2), g.add("c", 3)
	b.SetErr("Apply", api.Conflict("", "disk full"))
	res := g.run(t, g.deployment("a", "b", "c"))
	// a and c do not wait for b: b has its own error.
	assert.Equal(t, "generation 1\n"+
		"a 10.30.0.0/24 applied status(gen 1, 2 peers)\n"+
		"b 10.30.1.0/24 error: applying generation 1: disk full\n"+
		"c 10.30.2.0/24 applied status(gen 1, 2 peers)\n", resultText(res))
	require.Error(t, res.Err())
	assert.Equal(t, "node b: applying generation 1: disk full", res.Err().Error())
	require.Len(t, res.Failed(), 1)
	assert.ErrorIs(t, res.Failed()[0].Err, api.ErrConflict)
	assert.NotNil(t, a.Spec("demo"))
	assert.NotNil(t, c.Spec("demo"))
	assert.Nil(t, b.Spec("demo"))

	// Fixed: running it again converges.
	b.SetErr("Apply", nil)
	res = g.run(t, g.deployment("a", "b", "c"))
	require.NoError(t, res.Err())
	for _, n := range []*deploytest.Node{a, b, c} {
		assert.Equal(t, uint64(2), n.Spec("demo").Generation)
	}
}

func TestUnreachableNode(t *testing.T) {
	g := newGrid(t)
	a, b := g.add("a", 1), g.add("b", 2)
	g.run(t, g.deployment("a", "b"))

	// A member that does not answer keeps its place (and key) in the spec.
	b.SetErr("Reserve", errors.New("connection refused"))
	res := g.run(t, g.deployment("a", "b"))
	assert.Equal(t, "generation 2\n"+
		"a 10.30.0.0/24 applied status(gen 2, 1 peers)\n"+
		"b 10.30.1.0/24 error: reserving demo: connection refused\n", resultText(res))
	assert.Equal(t, "generation 2\n"+
		"a 10.30.0.0/24 198.18.0.1:40100 AQEB\n"+
		"b 10.30.1.0/24 198.18.0.2:40200 AgIC\n", specText(a.Spec("demo")))

	// A new node that does not answer is left out of the spec.
	g.add("c", 3).SetErr("Network", errors.New("no route to host"))
	g.nodes[apiOf("b")] = b
	b.SetErr("Reserve", nil)
	res = g.run(t, g.deployment("a", "b", "c"))
	assert.Equal(t, "generation 3\n"+
		"a 10.30.0.0/24 applied status(gen 3, 1 peers)\n"+
		"b 10.30.1.0/24 applied status(gen 3, 1 peers)\n"+
		"c error: reading its spec of demo: no route to host\n", resultText(res))

	// A node whose API has no fake at all, and a wrong node id.
	d := g.deployment("a", "b")
	d.Nodes = append(d.Nodes, deploy.NodeRef{ID: "x", API: "unix:///fake/nowhere.sock", Hidden: true},
		deploy.NodeRef{ID: "y", API: apiOf("c"), Hidden: true})
	g.nodes[apiOf("c")].SetErr("Network", nil)
	res = g.run(t, d)
	assert.Contains(t, resultText(res), "x error: connecting: no fake node at unix:///fake/nowhere.sock\n")
	assert.Contains(t, resultText(res), `y error: the znetd at unix:///fake/c.sock is node "c", not "y"`)
}

func TestNothingReachable(t *testing.T) {
	g := newGrid(t)
	a := g.add("a", 1)
	b := g.add("b", 2)
	g.run(t, g.deployment("a", "b"))
	b.SetErr("Network", errors.New("down"))
	g.run(t, g.deployment("a")) // b cannot be removed yet: remembered

	a.SetErr("Reserve", errors.New("down"))
	res := g.run(t, g.deployment("a"))
	assert.Equal(t, "generation 0\na error: reserving demo: down\n", resultText(res))
	assert.Nil(t, res.Spec)
	assert.Equal(t, uint64(2), a.Spec("demo").Generation)

	// Nothing was applied, so b is still remembered and removed later.
	a.SetErr("Reserve", nil)
	b.SetErr("Network", nil)
	res = g.run(t, g.deployment("a"))
	require.NoError(t, res.Err())
	assert.Contains(t, resultText(res), "b removed\n")
	assert.False(t, b.Has("demo"))
}

func TestRefusedBeforeApplying(t *testing.T) {
	g := newGrid(t)
	a := g.add("a", 1)
	g.run(t, g.deployment("a"))
	calls := len(a.Calls())

	d := g.deployment("a")
	d.IPRange = netip.MustParsePrefix("10.31.0.0/16")
	_, err := deploy.Run(t.Context(), d, g.opts)
	require.ErrorIs(t, err, deploy.ErrInvalid)
	assert.Contains(t, err.Error(), "ip_range: the network demo has range 10.30.0.0/16")

	d = g.deployment("a")
	d.Nodes[0].API = "https://a.example:8443"
	_, err = deploy.Run(t.Context(), d, g.opts)
	require.ErrorIs(t, err, deploy.ErrInvalid)
	assert.EqualError(t, err, "nodes[0].token_file: is required for an https API")

	for _, c := range a.Calls()[calls:] {
		assert.False(t, strings.HasPrefix(c, "Apply"), "applied after all: %s", c)
	}
}

func TestWait(t *testing.T) {
	t.Run("until handshakes appear", func(t *testing.T) {
		g := newGrid(t)
		a, b, h := g.add("a", 1), g.add("b", 2), g.add("h", 3)
		a.HandshakeAfter(4)
		h.HandshakeAfter(2)
		res := g.run(t, g.deployment("a", "b", "h"))
		require.NoError(t, res.Err())
		assert.Equal(t, 4, count(a.Calls(), "Status(demo)"))
		assert.Equal(t, 1, count(b.Calls(), "Status(demo)"))
		assert.Equal(t, 2, count(h.Calls(), "Status(demo)"))
		for _, p := range res.Nodes[0].Status.Peers {
			assert.False(t, p.LastHandshake.IsZero(), p.Name)
		}
	})
	t.Run("times out naming the missing peers", func(t *testing.T) {
		g := newGrid(t)
		g.add("a", 1)
		g.add("b", 2).HandshakeAfter(0, "a", "h")
		g.add("h", 3)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		res, err := deploy.Run(ctx, g.deployment("a", "b", "h"), g.opts)
		require.NoError(t, err)
		assert.Equal(t, "generation 1\n"+
			"a 10.30.0.0/24 applied status(gen 1, 2 peers)\n"+
			"b 10.30.1.0/24 applied status(gen 1, 2 peers) error: waiting for the mesh: no new handshake or packet from a, h since generation 1 was applied\n"+
			"h 10.30.2.0/24 applied status(gen 1, 2 peers)\n", resultText(res))
		assert.False(t, errors.Is(res.Err(), context.DeadlineExceeded), "the error must not read as an API timeout")
	})
	t.Run("a link cut before the redeploy fails, naming the pair", func(t *testing.T) {
		g := newGrid(t)
		a, b := g.add("a", 1), g.add("b", 2)
		g.add("c", 3)
		require.NoError(t, g.run(t, g.deployment("a", "b", "c")).Err())
		// The link a-b goes down: both keep the handshake they had, seconds
		// old, and hear nothing more from each other.
		a.HandshakeAfter(0, "b")
		b.HandshakeAfter(0, "a")
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		res, err := deploy.Run(ctx, g.deployment("a", "b", "c"), g.opts)
		require.NoError(t, err)
		assert.Equal(t, "generation 2\n"+
			"a 10.30.0.0/24 applied status(gen 2, 2 peers) error: waiting for the mesh: no new handshake or packet from b since generation 2 was applied\n"+
			"b 10.30.1.0/24 applied status(gen 2, 2 peers) error: waiting for the mesh: no new handshake or packet from a since generation 2 was applied\n"+
			"c 10.30.2.0/24 applied status(gen 2, 2 peers)\n", resultText(res))
		for _, p := range res.Nodes[0].Status.Peers {
			assert.False(t, p.LastHandshake.IsZero(), "a still reports its old handshake with %s", p.Name)
		}

		// Healed: the next deploy succeeds.
		a.HandshakeAfter(0)
		b.HandshakeAfter(0)
		require.NoError(t, g.run(t, g.deployment("a", "b", "c")).Err())
	})
	t.Run("bytes received after the apply count, whatever the clocks", func(t *testing.T) {
		g := newGrid(t)
		a, b := g.add("a", 1), g.add("b", 2)
		// The nodes' clocks stand still, years apart from the deployer's:
		// no handshake is ever newer than the last, only bytes arrive.
		a.SetClock(func() time.Time { return time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC) })
		b.SetClock(func() time.Time { return time.Date(2049, 1, 1, 0, 0, 0, 0, time.UTC) })
		require.NoError(t, g.run(t, g.deployment("a", "b")).Err())
		before := count(a.Calls(), "Status(demo)")
		require.NoError(t, g.run(t, g.deployment("a", "b")).Err())
		assert.Equal(t, 2, count(a.Calls(), "Status(demo)")-before, "a baseline, then more bytes")
	})
	t.Run("a status that keeps failing is named", func(t *testing.T) {
		g := newGrid(t)
		g.add("a", 1).SetErr("Status", errors.New("daemon restarting"))
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		res, err := deploy.Run(ctx, g.deployment("a"), g.opts)
		require.NoError(t, err)
		assert.EqualError(t, res.Err(), "node a: waiting for the mesh: reading its status: daemon restarting")
	})
	t.Run("no wait: one status each", func(t *testing.T) {
		g := newGrid(t)
		a := g.add("a", 1)
		a.HandshakeAfter(100)
		g.add("b", 2)
		g.opts.NoWait = true
		res := g.run(t, g.deployment("a", "b"))
		require.NoError(t, res.Err())
		assert.Equal(t, 1, count(a.Calls(), "Status(demo)"))
		assert.True(t, res.Nodes[0].Status.Peers[0].LastHandshake.IsZero())
	})
}

func count(calls []string, call string) int {
	n := 0
	for _, c := range calls {
		if c == call {
			n++
		}
	}
	return n
}

func TestRecordFile(t *testing.T) {
	g := newGrid(t)
	g.add("a", 1)
	g.add("h", 2)
	g.opts.StateDir = filepath.Join(t.TempDir(), "state", "deploy")
	g.run(t, g.deployment("a", "h"))
	b, err := os.ReadFile(filepath.Join(g.opts.StateDir, "demo.json"))
	require.NoError(t, err)
	assert.JSONEq(t, `{"network": "demo", "nodes": [
		{"id": "a", "api": "unix:///fake/a.sock"},
		{"id": "h", "api": "unix:///fake/h.sock"}]}`, string(b))

	require.NoError(t, os.WriteFile(filepath.Join(g.opts.StateDir, "demo.json"), []byte("{"), 0o600))
	_, err = deploy.Run(t.Context(), g.deployment("a"), g.opts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "reading the deploy record")
}
