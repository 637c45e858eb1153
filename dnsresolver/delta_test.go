package dnsresolver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
)

// holder is a Controller that keeps the normalized Config it was given,
// refusing what a Resolver refuses.
type holder struct {
	mu  sync.Mutex
	cfg *Config
}

func (h *holder) Update(cfg Config) error {
	n, err := cfg.normalized()
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cfg = &n
	return nil
}

func (h *holder) Stats() Stats { return Stats{} }

func (h *holder) held() *Config {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cfg
}

// opCounter is a listener that counts the requests it sees by op.
type opCounter struct {
	net.Listener
	deltas, configs atomic.Int32
}

func (l *opCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *opCounter
	seen bool
}

func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if !c.seen && n > 0 {
		c.seen = true
		switch {
		case bytes.Contains(b[:n], []byte(`"op":"delta"`)):
			c.l.deltas.Add(1)
		case bytes.Contains(b[:n], []byte(`"op":"config"`)):
			c.l.configs.Add(1)
		}
	}
	return n, err
}

// controlServer serves the control protocol for a new holder at sock.
func controlServer(t *testing.T, sock string) (*holder, *opCounter, func()) {
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	counted := &opCounter{Listener: l}
	h := &holder{}
	return h, counted, ServeControl(counted, h)
}

// churn changes cfg's members at random: removes, adds, changes a subnet,
// and now and then lists a member twice (invalid) or changes the local
// records.
func churn(rng *rand.Rand, cfg Config, next *int) Config {
	out := cfg
	out.Members = nil
	for _, m := range cfg.Members {
		switch rng.IntN(20) {
		case 0: // removed
		case 1: // changed
			if m.Subnet4.IsValid() {
				m.Subnet4 = netip.Prefix{}
			} else {
				m.Subnet4 = netip.PrefixFrom(m.Gateway4, 32)
			}
			out.Members = append(out.Members, m)
		default:
			out.Members = append(out.Members, m)
		}
	}
	for range rng.IntN(3) {
		*next++
		a := netip.AddrFrom4([4]byte{10, 20, byte(100 + *next/250), byte(1 + *next%250)})
		out.Members = append(out.Members, Member{ID: fmt.Sprintf("x%d", *next), Gateway4: a})
	}
	if rng.IntN(10) == 0 && len(out.Members) > 0 {
		out.Members = append(out.Members, out.Members[0])
	}
	if rng.IntN(5) == 0 {
		out.Local = append([]Record{}, out.Local[:rng.IntN(len(out.Local)+1)]...)
	}
	rng.Shuffle(len(out.Members), func(i, j int) { out.Members[i], out.Members[j] = out.Members[j], out.Members[i] })
	return out
}

// TestDeltaPushHoldsWhatAFullPushWould pushes a random sequence of
// configs, restarting the server in between: after every push the server
// holds exactly what the whole config gives, and most pushes are deltas.
func TestDeltaPushHoldsWhatAFullPushWould(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	sock := filepath.Join(t.TempDir(), "dns.sock")
	h, counted, stop := controlServer(t, sock)
	defer func() { stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rng := rand.New(rand.NewPCG(1, 2))
	cfg := bigConfig(50)
	cfg.Local = testConfig().Local
	next, deltas, configs := 0, int32(0), int32(0)
	var pushes Pushes
	for step := range 200 {
		if step%50 == 25 { // the resolver restarts: a new server, nothing held
			deltas, configs = deltas+counted.deltas.Load(), configs+counted.configs.Load()
			stop()
			h, counted, stop = controlServer(t, sock)
		}
		if step > 0 {
			cfg = churn(rng, cfg, &next)
		}
		want, wantErr := cfg.normalized()
		before := h.held()
		err := pushes.Push(ctx, sock, cfg)
		if wantErr != nil {
			require.ErrorIs(t, err, ErrInvalidConfig, "step %d", step)
			assert.Equal(t, before, h.held(), "step %d: a refused config changes nothing", step)
			cfg = dropDuplicates(cfg)
			continue
		}
		require.NoError(t, err, "step %d", step)
		require.Equal(t, want, *h.held(), "step %d", step)
	}
	deltas, configs = deltas+counted.deltas.Load(), configs+counted.configs.Load()
	t.Logf("%d deltas, %d whole configs", deltas, configs)
	assert.Greater(t, deltas, 2*configs, "most pushes are deltas")
}

// dropDuplicates keeps the first member of each id.
func dropDuplicates(cfg Config) Config {
	seen := map[string]bool{}
	var ms []Member
	for _, m := range cfg.Members {
		if !seen[m.ID] {
			seen[m.ID] = true
			ms = append(ms, m)
		}
	}
	cfg.Members = ms
	return cfg
}

// TestPushToAServerWithoutVersions: a data plane from before deltas
// answers no version, and gets whole configs only.
func TestPushToAServerWithoutVersions(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "dns.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	var requests []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			req, _ := io.ReadAll(c)
			requests = append(requests, string(req))
			_, _ = c.Write([]byte("{}\n"))
			_ = c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := bigConfig(3)
	var pushes Pushes
	require.NoError(t, pushes.Push(ctx, sock, cfg))
	cfg.Members = cfg.Members[1:]
	require.NoError(t, pushes.Push(ctx, sock, cfg))
	_ = l.Close()
	<-done
	require.Len(t, requests, 2)
	for _, r := range requests {
		assert.Contains(t, r, `"op":"config"`)
	}
}

func TestDeltaAgainstAnotherConfigIsStale(t *testing.T) {
	base := bigConfig(3)
	d := configDelta{Config: base, Remove: []string{"m0000", "nobody"}}
	_, err := d.applyTo(base)
	require.ErrorIs(t, err, errStale)
	d.Remove = []string{"m0000"}
	d.Add = []Member{{ID: "m0001", Gateway4: netip.MustParseAddr("10.20.9.9")}}
	got, err := d.applyTo(base)
	require.NoError(t, err)
	assert.Equal(t, []Member{base.Members[2], d.Add[0]}, got.Members)
}

// TestDeltaFromMatchesIndexingAll checks that the change deltaFrom finds
// between the equal ends of two member lists is the one indexing every
// member gives, and that a member listed twice is found whether the other
// entry is at an end or between.
func TestDeltaFromMatchesIndexingAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	cfg := bigConfig(60)
	next := 0
	for step := range 500 {
		last := pushedConfig{version: "v", cfg: dropDuplicates(cfg)}
		cfg = churnInPlace(rng, last.cfg, &next)
		got, ok := deltaFrom(last, cfg)
		want, wantOK := memberChanges(last.cfg.Members, cfg.Members)
		require.Equal(t, wantOK, ok, "step %d", step)
		if !ok {
			continue
		}
		assert.ElementsMatch(t, want.Add, got.Add, "step %d", step)
		assert.ElementsMatch(t, want.Remove, got.Remove, "step %d", step)
	}
}

// churnInPlace changes a few of cfg's members where they are (removes,
// changes, inserts) and now and then lists a member twice, near an end
// or in the middle.
func churnInPlace(rng *rand.Rand, cfg Config, next *int) Config {
	ms := slices.Clone(cfg.Members)
	for range rng.IntN(4) {
		if len(ms) == 0 {
			break
		}
		i := rng.IntN(len(ms))
		switch rng.IntN(3) {
		case 0:
			ms = slices.Delete(ms, i, i+1)
		case 1:
			ms[i].Subnet4 = netip.Prefix{}
		default:
			*next++
			a := netip.AddrFrom4([4]byte{10, 20, byte(100 + *next/250), byte(1 + *next%250)})
			ms = slices.Insert(ms, i, Member{ID: fmt.Sprintf("x%d", *next), Gateway4: a})
		}
	}
	if rng.IntN(8) == 0 && len(ms) > 1 {
		ms = slices.Insert(ms, rng.IntN(len(ms)), ms[[]int{0, len(ms) - 1, len(ms) / 2}[rng.IntN(3)]])
	}
	cfg.Members = ms
	return cfg
}
