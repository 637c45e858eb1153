package dnsresolver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
)

// quietResolver starts a resolver for cfg (on loopback gateways) whose
// members are never reached: once it listens, every socket it would open
// to a member is refused, so nothing leaves the process.
func quietResolver(t *testing.T, cfg Config) *Resolver {
	t.Helper()
	var refuse atomic.Bool
	do := func(fn func() error) error {
		if refuse.Load() {
			return errors.New("no traffic in this test")
		}
		return fn()
	}
	r, err := NewWithOptions(cfg, nil, Options{Do: do, Port: 20000 + rand.IntN(20000)})
	if err != nil {
		t.Skip(err)
	}
	refuse.Store(true)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// servedResolver is quietResolver behind a control socket, whose path it
// returns.
func servedResolver(t *testing.T, cfg Config) (*Resolver, string) {
	t.Helper()
	r := quietResolver(t, cfg)
	sock := filepath.Join(t.TempDir(), "dns.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	t.Cleanup(ServeControl(l, r))
	return r, sock
}

// loopConfig is a config of n members on 127.21.0.0/16.
func loopConfig(n int) Config {
	cfg := Config{Network: "patch", NodeID: "self", Gateway4: netip.MustParseAddr("127.21.0.1"),
		IPRange: netip.MustParsePrefix("127.21.0.0/16"),
		Local:   []Record{{Name: "web", IPv4: netip.MustParseAddr("127.21.0.5")}}}
	for i := range n {
		cfg.Members = append(cfg.Members, loopMember(i))
	}
	return cfg
}

// loopMember is member i of loopConfig: gateway .1 of its /24.
func loopMember(i int) Member {
	sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 21, byte(1 + i%250), 0}), 24)
	return Member{ID: fmt.Sprintf("m%d", i), Gateway4: sub.Addr().Next(), Subnet4: sub}
}

// churnMembers changes cfg's members at random, as deltas see them: adds,
// removes, new gateways or subnets, and now and then what only a whole
// update may decide (an id in upper case or twice, a gateway shared, this
// node's id, new local records).
func churnMembers(rng *rand.Rand, cfg Config, next *int) Config {
	out := cfg
	out.Members = nil
	for _, m := range cfg.Members {
		switch rng.IntN(25) {
		case 0: // removed
		case 1: // moved to a free gateway in its subnet
			m.Gateway4 = m.Subnet4.Addr().Next().Next()
			out.Members = append(out.Members, m)
		case 2: // subnet dropped
			m.Subnet4 = netip.Prefix{}
			out.Members = append(out.Members, m)
		default:
			out.Members = append(out.Members, m)
		}
	}
	for range rng.IntN(3) {
		*next++
		out.Members = append(out.Members, loopMember(*next))
	}
	if len(out.Members) > 0 {
		switch rng.IntN(30) {
		case 0:
			out.Members = append(out.Members, out.Members[0])
		case 1:
			out.Members[0].ID = strings.ToUpper(out.Members[0].ID)
		case 2:
			m := loopMember(*next + 1000)
			m.Gateway4, m.Subnet4 = out.Members[0].Gateway4, out.Members[0].Subnet4
			out.Members = append(out.Members, m)
		case 3:
			out.Members = append(out.Members, Member{ID: "self", Gateway4: netip.MustParseAddr("127.21.255.1")})
		case 4:
			out.Local = []Record{{Name: "db", IPv4: netip.MustParseAddr("127.21.0.6")}}
		}
	}
	rng.Shuffle(len(out.Members), func(i, j int) { out.Members[i], out.Members[j] = out.Members[j], out.Members[i] })
	return out
}

// transferSome gives a few of r's members new records, as transfers
// would: a name of their own, a name many members hold, this node's
// workload name, and addresses outside the network's range.
func transferSome(rng *rand.Rand, r *Resolver) {
	r.mu.Lock()
	var ms []*member
	for _, m := range r.members {
		ms = append(ms, m)
	}
	r.mu.Unlock()
	for range min(2, len(ms)) {
		m := ms[rng.IntN(len(ms))]
		recs := map[string]addrs{}
		for _, name := range []string{m.ID + "-app", "shared", "web", "outside"} {
			if rng.IntN(2) == 0 {
				continue
			}
			var a addrs
			a.add(m.Subnet4.Addr().Next().Next().Next())
			if name == "outside" {
				a = addrs{v4: []netip.Addr{netip.MustParseAddr("10.99.0.1")}}
			}
			a.add(netip.MustParseAddr(fmt.Sprintf("fd00::%x", rng.IntN(4))))
			recs[name] = a
		}
		r.recordSync(m, recs, rng.Uint32(), nil)
	}
}

// requireRebuilt checks that r holds and serves what a whole rebuild of
// its Config and records gives, and that its Config is want normalized.
func requireRebuilt(t *testing.T, r *Resolver, want Config, step int) {
	t.Helper()
	ncfg, err := want.normalized()
	require.NoError(t, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Equal(t, ncfg, r.cfg, "step %d", step)
	held := map[string]map[string]addrs{}
	for id, m := range r.members {
		held[id] = m.records
	}
	require.Len(t, r.members, len(ncfg.Members), "step %d", step)
	for _, m := range ncfg.Members {
		require.Equal(t, m, r.members[m.ID].Member, "step %d", step)
	}
	v := r.view.Load()
	require.Equal(t, newView(r.cfg, v.serial, v.localSerial, held), v, "step %d", step)
}

// TestMemberPatchesHoldWhatAFullUpdateWould pushes random changes of
// members, with records transferred in between, to a real resolver: after
// every push and every transfer it holds and serves exactly what a whole
// rebuild gives, and what a whole Config refuses is refused.
func TestMemberPatchesHoldWhatAFullUpdateWould(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	cfg := loopConfig(40)
	r, sock := servedResolver(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(3, 4))
	next := 40
	var pushes Pushes
	for step := range 300 {
		transferSome(rng, r)
		requireRebuilt(t, r, cfg, step)
		changed := churnMembers(rng, cfg, &next)
		_, wantErr := changed.normalized()
		err := pushes.Push(ctx, sock, changed)
		if wantErr != nil {
			require.ErrorIs(t, err, ErrInvalidConfig, "step %d", step)
			assert.Contains(t, err.Error(), wantErr.Error(), "step %d: the whole Config's error", step)
			requireRebuilt(t, r, cfg, step)
			continue
		}
		require.NoError(t, err, "step %d", step)
		cfg = changed
		requireRebuilt(t, r, cfg, step)
	}
}

// TestPatchMembersLeavesTheRestToUpdate lists what a resolver patches
// and what it leaves to a whole Update (patchMembers false, nothing
// changed).
func TestPatchMembersLeavesTheRestToUpdate(t *testing.T) {
	base := loopConfig(3)
	tests := []struct {
		name   string
		edit   func(c *Config)
		add    []Member
		remove []string
		patch  bool
	}{
		{name: "member added", add: []Member{loopMember(7)}, patch: true},
		{name: "member removed", remove: []string{"m1"}, patch: true},
		{name: "member moved", add: []Member{{ID: "m1", Gateway4: loopMember(1).Gateway4.Next()}}, patch: true},
		{name: "gateway handed over", remove: []string{"m1"}, add: []Member{{ID: "m9", Gateway4: loopMember(1).Gateway4}}, patch: true},
		{name: "id in upper case", add: []Member{{ID: "M7", Gateway4: loopMember(7).Gateway4}}},
		{name: "this node's id", add: []Member{{ID: "self", Gateway4: loopMember(7).Gateway4}}},
		{name: "this node's gateway", add: []Member{{ID: "m7", Gateway4: base.Gateway4}}},
		{name: "another member's gateway", add: []Member{{ID: "m7", Gateway4: loopMember(1).Gateway4}}},
		{name: "added twice", add: []Member{loopMember(7), loopMember(7)}},
		{name: "no gateway", add: []Member{{ID: "m7"}}},
		{name: "gateway out of range", add: []Member{{ID: "m7", Gateway4: netip.MustParseAddr("10.0.0.1")}}},
		{name: "unknown member removed", remove: []string{"m7"}},
		{name: "removed twice", remove: []string{"m1", "m1"}},
		{name: "removed and added", remove: []string{"m1"}, add: []Member{loopMember(1)}},
		{name: "local records changed", edit: func(c *Config) { c.Local = nil }, add: []Member{loopMember(7)}},
		{name: "range changed", edit: func(c *Config) { c.IPRange = netip.MustParsePrefix("127.0.0.0/8") }, add: []Member{loopMember(7)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := quietResolver(t, base)
			cfg := base
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			d := configDelta{Config: cfg, Add: tt.add, Remove: tt.remove}
			d.Config.Members = nil
			full, err := d.applyTo(base)
			if err != nil {
				full = base
			}
			before := r.view.Load()
			_, patched := r.patchMembers(full, tt.add, tt.remove, 0)
			require.Equal(t, tt.patch, patched)
			if !tt.patch {
				assert.Same(t, before, r.view.Load(), "nothing changed")
				return
			}
			requireRebuilt(t, r, full, 0)
		})
	}
}

// TestDeltaAfterAnotherUpdateIsWhole checks that a resolver changed by
// someone else than its control server since the server's last change
// takes the next delta's Config whole: it ends where a whole push would,
// not at the other change patched.
func TestDeltaAfterAnotherUpdateIsWhole(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	cfg := loopConfig(5)
	r, sock := servedResolver(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pushes Pushes
	require.NoError(t, pushes.Push(ctx, sock, cfg))

	other := cfg
	other.Members = cfg.Members[:2]
	require.NoError(t, r.Update(other))
	plus := cfg
	plus.Members = append(slices.Clone(cfg.Members), loopMember(9))
	require.NoError(t, pushes.Push(ctx, sock, plus))
	requireRebuilt(t, r, plus, 0)
}

// TestPatchedWithoutChangesShares checks that a view patched by no
// change serves what its origin does under the new serial, without a copy
// of its maps (a push that changed no member).
func TestPatchedWithoutChangesShares(t *testing.T) {
	cfg, err := loopConfig(40).normalized()
	require.NoError(t, err)
	v := newView(cfg, 1, 1, nil)
	nv := v.patched(cfg, 2, 1, nil, func(string) map[string]addrs { return nil })
	require.Equal(t, uint32(2), nv.serial)
	want := *v
	want.serial = 2
	require.Equal(t, &want, nv)
	allocs := testing.AllocsPerRun(10, func() { v.patched(cfg, 3, 1, nil, nil) })
	require.LessOrEqual(t, allocs, 2.0, "a view patched by nothing copied its maps")
}
