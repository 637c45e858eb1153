package dataplane

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/dnsresolver"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/internal/testutil/nstest"
	"github.com/znet/znet/namespaces"
)

// TestResolvers checks the life of a resolver-only process: started in
// its namespace, serving its control socket; adopted by a new Resolvers (a
// restarted znetd); replaced when it runs in another namespace; its death
// reported by Wait; gone with its files after Delete.
func TestResolvers(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fx := newResolverFixture(t, "zt-rs-", "a", "b")
	opts, ifname, newResolvers := fx.opts, fx.ifname, fx.newResolvers
	pathA, pathB := fx.paths[0], fx.paths[1]
	inNS := func(pid int, path string) bool {
		got, err := NetnsIno(pid)
		require.NoError(t, err)
		want, err := PathIno(path)
		require.NoError(t, err)
		return got == want
	}

	r := newResolvers()
	pid, err := r.Ensure(ctx, ifname, pathA)
	require.NoError(t, err)
	assert.Equal(t, pid, r.PID(ifname))
	assert.True(t, inNS(pid, pathA), "runs in its namespace")
	_, err = dnsresolver.Query(ctx, r.Socket(ifname))
	require.NoError(t, err, "its control socket answers")

	r2 := newResolvers()
	got, err := r2.Ensure(ctx, ifname, pathA)
	require.NoError(t, err)
	assert.Equal(t, pid, got, "adopted by a restarted znetd")

	moved, err := r2.Ensure(ctx, ifname, pathB)
	require.NoError(t, err)
	assert.NotEqual(t, pid, moved, "one in another namespace is replaced")
	assert.True(t, inNS(moved, pathB))
	assert.Eventually(t, func() bool { return !Alive(pid) }, 5*time.Second, 10*time.Millisecond)

	require.NoError(t, unix.Kill(moved, unix.SIGKILL))
	reason, err := r2.Wait(ctx, ifname, moved)
	require.NoError(t, err)
	assert.Equal(t, "killed by signal 9 (killed)", reason)
	assert.Zero(t, r2.PID(ifname), "a dead one has no pid")

	last, err := r2.Ensure(ctx, ifname, pathB)
	require.NoError(t, err)
	require.NoError(t, r2.Delete(ctx, ifname))
	assert.False(t, Alive(last))
	entries, err := os.ReadDir(opts.RunDir)
	require.NoError(t, err)
	assert.Empty(t, entries, "pid file, log and socket removed")
}

// TestResolversAdoptWithoutPidFile: a resolver whose pid file is missing
// (znetd died between the fork and writing it, or the file was lost) is
// still found by a restarted znetd: adopted, not doubled by a second one
// (which could not bind the gateways' port 53 the first still holds), and
// stopped by Delete rather than left running in the namespace for good.
func TestResolversAdoptWithoutPidFile(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fx := newResolverFixture(t, "zt-rp-", "a")
	ifname, newResolvers, path := fx.ifname, fx.newResolvers, fx.paths[0]

	r := newResolvers()
	pid, err := r.Ensure(ctx, ifname, path)
	require.NoError(t, err)
	t.Cleanup(func() { // whatever the outcome: no process left behind
		if Alive(pid) && isMode(pid, modeResolver, ifname) {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	})
	require.NoError(t, os.Remove(r.pidFile(ifname)))

	r2 := newResolvers()
	assert.Equal(t, pid, r2.PID(ifname), "found without its pid file")
	got, err := r2.Ensure(ctx, ifname, path)
	require.NoError(t, err)
	assert.Equal(t, pid, got, "adopted, not started a second time")
	had, err := ReadPidFile(r2.pidFile(ifname))
	require.NoError(t, err)
	assert.Equal(t, pid, had, "its pid file written again")
	require.NoError(t, r2.Delete(ctx, ifname))
	assert.False(t, isMode(pid, modeResolver, ifname), "Delete stops it")
}

// resolverFixture is what a Resolvers test works with: options over an
// underlay namespace of its own, one device, namespaces to run it in.
type resolverFixture struct {
	opts         ResolverOptions
	ifname       string
	paths        []string // the namespaces named by the suffixes, in order
	newResolvers func() *Resolvers
}

// newResolverFixture makes the namespaces of a test (names starting with
// prefix): an underlay and one per suffix, deleted at the end of t.
func newResolverFixture(t *testing.T, prefix string, suffixes ...string) resolverFixture {
	base := prefix + testutil.RandomHex(t, 4)
	ul := nstest.CreateNS(t, base+"-u")
	fx := resolverFixture{
		opts:   ResolverOptions{Underlay: ul, RunDir: t.TempDir(), Exe: os.Args[0], Env: []string{dataplaneEnv + "=1"}},
		ifname: "zt" + testutil.RandomHex(t, 4),
	}
	for _, s := range suffixes {
		nstest.CreateNS(t, base+"-"+s)
		fx.paths = append(fx.paths, namespaces.Path(base+"-"+s))
	}
	fx.newResolvers = resolversMaker(t, fx.opts, fx.ifname)
	return fx
}

// resolversMaker returns a function that makes a Resolvers with opts, as
// a (re)started znetd does, which deletes ifname's resolver and closes at
// the end of t.
func resolversMaker(t *testing.T, opts ResolverOptions, ifname string) func() *Resolvers {
	return func() *Resolvers {
		r, err := NewResolvers(opts)
		require.NoError(t, err)
		t.Cleanup(func() {
			assert.NoError(t, r.Delete(context.Background(), ifname))
			assert.NoError(t, r.Close())
		})
		return r
	}
}

// TestResolversList: List names the resolvers of its own run directory,
// found by pid file or, with the pid file lost, by the socket they serve
// there; another run directory's (another znetd on the machine) are not
// its to sweep.
func TestResolversList(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fx := newResolverFixture(t, "zt-rl-", "a")
	opts, ifname, newResolvers := fx.opts, fx.ifname, fx.newResolvers

	r := newResolvers()
	list, err := r.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
	pid, err := r.Ensure(ctx, ifname, fx.paths[0])
	require.NoError(t, err)
	list, err = r.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{ifname}, list)

	other := opts
	other.RunDir = t.TempDir()
	list, err = resolversMaker(t, other, ifname)().List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list, "another run directory's resolver")

	require.NoError(t, os.Remove(r.pidFile(ifname)))
	r2 := newResolvers()
	list, err = r2.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{ifname}, list, "found without its pid file")

	require.NoError(t, r2.Delete(ctx, ifname))
	assert.False(t, isMode(pid, modeResolver, ifname))
	list, err = r2.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
}
