package overlay

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/znet/znet/dataplane"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/internal/testutil/nstest"
	"github.com/znet/znet/namespaces"
)

// newTestUserspace returns a userspace backend closed in t.Cleanup.
func newTestUserspace(t *testing.T, underlay netns.NsHandle, runDir string, logs *logBuffer) *Userspace {
	t.Helper()
	b, err := newUserspace(testOptions(underlay, runDir, logs.logger()))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	return b
}

// step runs one step of a scenario and stops the scenario if it failed.
func step(t *testing.T, name string, fn func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, fn) {
		t.FailNow()
	}
}

// TestUserspace runs two data planes joined across two underlays and walks
// them through adoption, restart and removal.
func TestUserspace(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	a, b := newTestNet(t)
	runA, runB := t.TempDir(), t.TempDir()
	var logsA, logsB logBuffer
	ba := newTestUserspace(t, a.ul, runA, &logsA)
	bb := newTestUserspace(t, b.ul, runB, &logsB)
	// Runs before the backends close, pass or fail.
	t.Cleanup(func() {
		killDataplanes(t, ba, a.dev)
		killDataplanes(t, bb, b.dev)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var pidA, pidB int

	step(t, "ensure starts a data plane inside the network namespace", func(t *testing.T) {
		var err error
		pidA, err = ba.Ensure(ctx, a.dev)
		require.NoError(t, err, "log: %s", dataplane.Tail(runA+"/"+a.dev.IfName+".log", 2000))
		pidB, err = bb.Ensure(ctx, b.dev)
		require.NoError(t, err, "log: %s", dataplane.Tail(runB+"/"+b.dev.IfName+".log", 2000))
		for _, x := range []struct {
			s   *side
			pid int
			b   *Userspace
			dir string
		}{{a, pidA, ba, runA}, {b, pidB, bb, runB}} {
			require.Positive(t, x.pid)
			assert.Equal(t, x.pid, x.b.PID(x.s.dev))
			assert.Zero(t, inotifyInstances(t, x.pid), "root may have only 128 inotify instances: one per network would cap a node near 120 networks")
			got, err := dataplane.ReadPidFile(x.dir + "/" + x.s.dev.IfName + ".pid")
			require.NoError(t, err)
			assert.Equal(t, x.pid, got)
			assert.FileExists(t, x.dir+"/"+x.s.dev.IfName+".drops", "the data plane counts its drops")
			drops, err := x.b.SendDrops(x.s.dev)
			require.NoError(t, err)
			assert.Zero(t, drops.TooBig)
			want, err := namespaces.ID(x.s.network)
			require.NoError(t, err)
			ino, err := dataplane.NetnsIno(x.pid)
			require.NoError(t, err)
			assert.Equal(t, want, ino, "data plane lives in the network namespace")
			sid, err := unix.Getsid(x.pid)
			require.NoError(t, err)
			assert.Equal(t, x.pid, sid, "data plane leads its own session")
			server, err := uapiAnswers(ctx, x.s.dev.IfName)
			require.NoError(t, err)
			assert.Equal(t, x.pid, server, "the data plane serves its own socket")
		}
	})

	step(t, "configure and ping across", func(t *testing.T) {
		require.NoError(t, ba.Configure(ctx, a.dev, a.config(b)))
		require.NoError(t, bb.Configure(ctx, b.dev, b.config(a)))
		a.addOverlayAddr(t)
		b.addOverlayAddr(t)
		ping(t, a.network, b.overlay.Addr())
		ping(t, b.network, a.overlay.Addr())
		dev, err := ba.Show(ctx, a.dev)
		require.NoError(t, err)
		assert.Equal(t, a.key, dev.PrivateKey)
		assert.Equal(t, a.port, dev.ListenPort)
	})

	step(t, "the UDP socket lives in the underlay", func(t *testing.T) {
		for _, s := range []*side{a, b} {
			assert.True(t, nstest.Listens(nstest.UDPPorts(t, s.underlay), s.port), "port %d in underlay %s", s.port, s.underlay)
			assert.False(t, nstest.Listens(nstest.UDPPorts(t, s.network), s.port), "port %d in network %s", s.port, s.network)
		}
	})

	step(t, "ensure again adopts without a reset", func(t *testing.T) {
		hs := peerHandshake(t, ba, a.dev)
		require.False(t, hs.IsZero(), "handshake happened")
		pid, err := ba.Ensure(ctx, a.dev)
		require.NoError(t, err)
		assert.Equal(t, pidA, pid)
		assert.Equal(t, hs, peerHandshake(t, ba, a.dev))
	})

	step(t, "a new backend adopts the running data plane", func(t *testing.T) {
		hs := peerHandshake(t, ba, a.dev)
		var logs logBuffer
		b2, err := newUserspace(testOptions(a.ul, runA, logs.logger()))
		require.NoError(t, err)
		defer func() { _ = b2.Close() }()
		pid, err := b2.Ensure(ctx, a.dev)
		require.NoError(t, err)
		assert.Equal(t, pidA, pid)
		assert.Equal(t, hs, peerHandshake(t, b2, a.dev))
		require.NoError(t, b2.Close())
		require.NoError(t, b2.Close(), "close twice")
		_, err = b2.Ensure(ctx, a.dev)
		require.ErrorIs(t, err, ErrClosed)
		assert.True(t, dataplane.IsDataplane(pidA, a.dev.IfName), "close leaves the data plane running")
		ping(t, a.network, b.overlay.Addr())
	})

	step(t, "a new backend finds a data plane whose pid file was lost", func(t *testing.T) {
		// find reads /proc once, when the backend is made (not at every
		// Ensure): what ran then must still be found.
		require.NoError(t, os.Remove(runA+"/"+a.dev.IfName+".pid"))
		var logs logBuffer
		b3, err := newUserspace(testOptions(a.ul, runA, logs.logger()))
		require.NoError(t, err)
		defer func() { _ = b3.Close() }()
		pid, err := b3.Ensure(ctx, a.dev)
		require.NoError(t, err)
		assert.Equal(t, pidA, pid, "adopted, not replaced")
		got, err := dataplane.ReadPidFile(runA + "/" + a.dev.IfName + ".pid")
		require.NoError(t, err)
		assert.Equal(t, pidA, got, "pid file rewritten")
	})

	step(t, "a lost pid file is found again through /proc", func(t *testing.T) {
		pidFile := runB + "/" + b.dev.IfName + ".pid"
		// A live process that is not a data plane: must be ignored, not killed.
		require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o600))
		assert.Zero(t, bb.PID(b.dev))
		pid, err := bb.Ensure(ctx, b.dev)
		require.NoError(t, err)
		assert.Equal(t, pidB, pid)
		got, err := dataplane.ReadPidFile(pidFile)
		require.NoError(t, err)
		assert.Equal(t, pidB, got, "pid file rewritten")
	})

	step(t, "SIGTERM stops a data plane cleanly", func(t *testing.T) {
		require.NoError(t, unix.Kill(pidB, unix.SIGTERM))
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		require.True(t, bb.waitGone(wctx, pidB, b.dev.IfName))
		// Running without privileges, the data plane cannot remove its
		// socket from root's /var/run/wireguard: it is left stale, and the
		// next data plane (or Delete) replaces it.
		_, err := uapiAnswers(ctx, b.dev.IfName)
		assert.Error(t, err, "nothing answers on the stopped data plane's socket")
		assert.Contains(t, logsB.String(), fmt.Sprintf("pid=%d status=0", pidB))
		assert.Contains(t, dataplane.Tail(runB+"/"+b.dev.IfName+".log", 4000), "stopping")

		pid, err := bb.Ensure(ctx, b.dev)
		require.NoError(t, err)
		assert.NotEqual(t, pidB, pid)
		pidB = pid
		require.NoError(t, bb.Configure(ctx, b.dev, b.config(a)))
		b.addOverlayAddr(t)
		ping(t, b.network, a.overlay.Addr())
	})

	step(t, "a killed data plane is replaced", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := bb.Wait(wctx, b.dev, pidB)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, "Wait waits while the data plane lives")
		reason := make(chan string, 1)
		go func() {
			r, err := bb.Wait(ctx, b.dev, pidB)
			assert.NoError(t, err)
			reason <- r
		}()
		require.NoError(t, unix.Kill(pidB, unix.SIGKILL))
		select {
		case r := <-reason:
			assert.Equal(t, "killed by signal 9 (killed)", r)
		case <-time.After(5 * time.Second):
			t.Fatal("Wait did not see the data plane die")
		}
		r, err := bb.Wait(ctx, b.dev, pidB)
		require.NoError(t, err)
		assert.Equal(t, "killed by signal 9 (killed)", r, "asked again after it was reaped")
		pid, err := bb.Ensure(ctx, b.dev)
		require.NoError(t, err)
		assert.NotEqual(t, pidB, pid)
		assert.False(t, dataplane.IsDataplane(pidB, b.dev.IfName))
		dev, err := bb.Show(ctx, b.dev)
		require.NoError(t, err)
		assert.Equal(t, wgtypes.Key{}, dev.PrivateKey, "a fresh device")
		pidB = pid
	})

	step(t, "an unresponsive data plane is replaced", func(t *testing.T) {
		require.NoError(t, unix.Kill(pidB, unix.SIGSTOP))
		require.Eventually(t, func() bool { return dataplane.ProcState(pidB) == 'T' }, 5*time.Second, 5*time.Millisecond)
		bb.termGrace = 300 * time.Millisecond
		pid, err := bb.Ensure(ctx, b.dev)
		require.NoError(t, err)
		assert.NotEqual(t, pidB, pid)
		assert.False(t, dataplane.IsDataplane(pidB, b.dev.IfName), "stopped process killed")
		assert.Contains(t, logsB.String(), "killing data plane")
		pidB = pid
	})

	step(t, "delete stops and removes everything", func(t *testing.T) {
		for _, x := range []struct {
			s   *side
			b   *Userspace
			pid int
			dir string
		}{{a, ba, pidA, runA}, {b, bb, pidB, runB}} {
			start := time.Now()
			require.NoError(t, x.b.Delete(ctx, x.s.dev))
			assert.Less(t, time.Since(start), defaultTermGrace, "exited on SIGTERM")
			assert.False(t, dataplane.Alive(x.pid), "process gone")
			assert.NoFileExists(t, x.dir+"/"+x.s.dev.IfName+".pid")
			assert.NoFileExists(t, x.dir+"/"+x.s.dev.IfName+".log")
			assert.NoFileExists(t, x.dir+"/"+x.s.dev.IfName+".drops")
			assert.NoFileExists(t, socketPath(x.s.dev.IfName))
			assert.Zero(t, x.b.PID(x.s.dev))
			_, err := x.b.Show(ctx, x.s.dev)
			require.ErrorIs(t, err, ErrNotFound)
			err = x.b.Configure(ctx, x.s.dev, x.s.config(a))
			require.ErrorIs(t, err, ErrNotFound)
			require.NoError(t, x.b.Delete(ctx, x.s.dev), "delete twice")
		}
		assert.Contains(t, logsA.String(), fmt.Sprintf("pid=%d status=0", pidA))
	})
}

// TestUserspaceErrors covers bad input, a missing namespace and a data
// plane that cannot start.
func TestUserspaceErrors(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	name := "zt-ov-" + testutil.RandomHex(t, 4)
	ul := nstest.CreateNS(t, name+"-u")
	nstest.CreateNS(t, name+"-n")
	runDir := t.TempDir()
	var logs logBuffer
	b := newTestUserspace(t, ul, runDir, &logs)
	good := Device{IfName: IfName(name, "n"), NetNS: namespaces.Path(name + "-n"), MTU: 1420}
	t.Cleanup(func() { killDataplanes(t, b, good) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	tests := []struct {
		name string
		dev  Device
		err  error
	}{
		{"empty ifname", Device{NetNS: good.NetNS}, os.ErrInvalid},
		{"long ifname", Device{IfName: "a234567890123456", NetNS: good.NetNS}, os.ErrInvalid},
		{"slash in ifname", Device{IfName: "a/b", NetNS: good.NetNS}, os.ErrInvalid},
		{"no namespace", Device{IfName: good.IfName}, os.ErrInvalid},
		{"mtu too small", Device{IfName: good.IfName, NetNS: good.NetNS, MTU: 100}, os.ErrInvalid},
		{"missing namespace", Device{IfName: good.IfName, NetNS: namespaces.Path(name + "-none")}, os.ErrNotExist},
		{"not a namespace", Device{IfName: good.IfName, NetNS: runDir}, namespaces.ErrNotNetNS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.Ensure(ctx, tt.dev)
			require.ErrorIs(t, err, tt.err)
			assert.Zero(t, findDataplane(runDir+"/"+good.IfName+".pid", good.IfName), "nothing started")
		})
	}

	t.Run("replace peers is refused", func(t *testing.T) {
		err := b.Configure(ctx, good, wgtypes.Config{ReplacePeers: true})
		require.ErrorIs(t, err, ErrReplacePeers)
	})

	t.Run("show a device that never existed", func(t *testing.T) {
		_, err := b.Show(ctx, good)
		require.ErrorIs(t, err, ErrNotFound)
	})

	t.Run("a data plane that fails to start", func(t *testing.T) {
		bad, err := newUserspace(Options{Underlay: ul, RunDir: runDir, Exe: "/bin/false"})
		require.NoError(t, err)
		defer func() { _ = bad.Close() }()
		_, err = bad.Ensure(ctx, good)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "exited during start")
		assert.NoFileExists(t, runDir+"/"+good.IfName+".pid")
	})

	t.Run("a stale socket is replaced", func(t *testing.T) {
		// A socket file nobody listens on, as a SIGKILLed data plane leaves.
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: socketPath(good.IfName), Net: "unix"})
		require.NoError(t, err)
		l.SetUnlinkOnClose(false)
		require.NoError(t, l.Close())
		_, err = b.Show(ctx, good)
		require.ErrorIs(t, err, ErrNotFound)
		pid, err := b.Ensure(ctx, good)
		require.NoError(t, err)
		assert.True(t, dataplane.IsDataplane(pid, good.IfName))
		require.NoError(t, b.Delete(ctx, good))
		assert.NoFileExists(t, socketPath(good.IfName))
	})
}

// inotifyInstances counts the inotify instances process pid holds.
func inotifyInstances(t *testing.T, pid int) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	require.NoError(t, err)
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(dir + "/" + fd.Name()); err == nil && target == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

// findDataplane (a test helper: the backend itself reads /proc once, at
// start) returns the pid of a live data plane of ifname, looking at
// the pid file first and then through /proc (in case the pid file was
// lost), or 0 when none runs.
func findDataplane(pidFile, ifname string) int {
	if pid, err := dataplane.ReadPidFile(pidFile); err == nil && dataplane.IsDataplane(pid, ifname) {
		return pid
	}
	return dataplane.Running()[ifname]
}
