package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIfName(t *testing.T) {
	tests := []struct {
		node, network string
		want          string
	}{
		// sha256("node1/shop") starts with 96c1243bfd.
		{"node1", "shop", "zn96c1243bfd"},
		{"node2", "shop", "zneeaf08d0ec"},
		{"node1", "web", "zn1b7a164fed"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.node+"/"+tt.network, func(t *testing.T) {
			got := IfName(tt.node, tt.network)
			assert.Equal(t, tt.want, got)
			assert.Len(t, got, 12)
			assert.NoError(t, checkIfName(got))
			assert.False(t, seen[got], "unique")
			seen[got] = true
		})
	}
}

func TestDeviceCheck(t *testing.T) {
	tests := []struct {
		name string
		dev  Device
		ok   bool
		mtu  int
	}{
		{"default mtu", Device{IfName: "zn0", NetNS: "/run/netns/x"}, true, DefaultMTU},
		{"explicit mtu", Device{IfName: "zn0", NetNS: "/run/netns/x", MTU: 1280}, true, 1280},
		{"15 chars", Device{IfName: "zn1234567890123", NetNS: "/x"}, true, DefaultMTU},
		{"16 chars", Device{IfName: "zn12345678901234", NetNS: "/x"}, false, 0},
		{"empty name", Device{NetNS: "/x"}, false, 0},
		{"dot dot", Device{IfName: "..", NetNS: "/x"}, false, 0},
		{"slash", Device{IfName: "a/b", NetNS: "/x"}, false, 0},
		{"space", Device{IfName: "a b", NetNS: "/x"}, false, 0},
		{"colon", Device{IfName: "a:b", NetNS: "/x"}, false, 0},
		{"no namespace", Device{IfName: "zn0"}, false, 0},
		{"negative mtu", Device{IfName: "zn0", NetNS: "/x", MTU: -1}, false, 0},
		{"tiny mtu", Device{IfName: "zn0", NetNS: "/x", MTU: 575}, false, 0},
		{"huge mtu", Device{IfName: "zn0", NetNS: "/x", MTU: 65536}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.dev.check()
			if !tt.ok {
				require.ErrorIs(t, err, os.ErrInvalid)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.mtu, tt.dev.mtu())
		})
	}
}

func TestIsDataplaneCmdline(t *testing.T) {
	tests := []struct {
		name    string
		cmdline string
		want    bool
	}{
		{"znetd", "/usr/bin/znetd\x00dataplane\x00--ifname\x00zn1\x00--mtu\x001420\x00", true},
		{"flag with equals", "znetd\x00dataplane\x00--mtu\x001420\x00--ifname=zn1\x00", true},
		{"single dash", "znetd\x00dataplane\x00-ifname\x00zn1\x00", true},
		{"other ifname", "znetd\x00dataplane\x00--ifname\x00zn2\x00", false},
		{"prefix of ifname", "znetd\x00dataplane\x00--ifname\x00zn10\x00", false},
		{"not a data plane", "znetd\x00--ifname\x00zn1\x00", false},
		{"daemon", "znetd\x00--node-id\x00zn1\x00", false},
		{"ifname without value", "znetd\x00dataplane\x00--ifname\x00", false},
		{"dataplane later", "sh\x00-c\x00dataplane\x00--ifname\x00zn1\x00", false},
		{"empty (zombie)", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, isDataplaneCmdline([]byte(tt.cmdline), "zn1"))
		})
	}
	t.Run("args round trip", func(t *testing.T) {
		cmdline := "/bin/znetd\x00"
		for _, a := range dataplaneArgs("zn1", 1420, 0, "", "") {
			cmdline += a + "\x00"
		}
		assert.True(t, isDataplaneCmdline([]byte(cmdline), "zn1"))
	})
}

func TestProcHelpers(t *testing.T) {
	self := os.Getpid()
	assert.True(t, alive(self))
	assert.Contains(t, []byte("RS"), procState(self))
	assert.False(t, isDataplane(self, "zn1"), "the test binary is no data plane")
	assert.False(t, alive(1<<30), "no such pid")
	assert.Zero(t, procState(1<<30))
	assert.False(t, isDataplane(0, "zn1"))
}

func TestPidFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "zn1.pid")
	_, err := readPidFile(path)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, writePidFile(path, 4242))
	require.NoError(t, writePidFile(path, 4243), "write twice")
	pid, err := readPidFile(path)
	require.NoError(t, err)
	assert.Equal(t, 4243, pid)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temp files left")

	for _, bad := range []string{"", "x", "-3", "0"} {
		t.Run(fmt.Sprintf("bad %q", bad), func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, []byte(bad), 0o600))
			_, err := readPidFile(path)
			require.Error(t, err)
		})
	}
	require.NoError(t, removeIfExists(path))
	require.NoError(t, removeIfExists(path), "remove twice")
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	assert.Empty(t, tail(path, 10), "missing file")
	require.NoError(t, os.WriteFile(path, []byte("first line\nlast line\n"), 0o600))
	assert.Equal(t, "last line", tail(path, 10))
	assert.Equal(t, "first line\nlast line", tail(path, 1000))
}

func TestWgctrlErr(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		notFound bool
	}{
		{"not exist", os.ErrNotExist, true},
		{"refused", &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}, true},
		{"no device", syscall.ENODEV, true},
		{"permission", syscall.EPERM, false},
		{"other", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wgctrlErr("reading", "zn1", tt.err)
			assert.Equal(t, tt.notFound, errors.Is(err, ErrNotFound))
			assert.Contains(t, err.Error(), "reading zn1")
		})
	}
}

func TestNewUnknownKind(t *testing.T) {
	_, err := New("bogus", Options{RunDir: t.TempDir()})
	require.ErrorIs(t, err, ErrUnknownKind)
}

func TestUserspaceNeedsRunDir(t *testing.T) {
	_, err := New("userspace", Options{})
	require.ErrorIs(t, err, os.ErrInvalid)
}

func TestRunDataplaneBadArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no ifname", []string{"dataplane"}},
		{"unknown flag", []string{"--ifname", "zn1", "--bogus"}},
		{"extra argument", []string{"--ifname", "zn1", "extra"}},
		{"bad ifname", []string{"--ifname", "a/b"}},
		{"bad mtu", []string{"--ifname", "zn1", "--mtu", "10"}},
		{"mtu not a number", []string{"--ifname", "zn1", "--mtu", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Exits before touching fd 3 or creating anything.
			assert.Equal(t, 2, RunDataplane(tt.args))
		})
	}
}

func TestKeyedMutex(t *testing.T) {
	var k keyedMutex
	unlockA := k.lock("a")
	// Another key is not blocked.
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.lock("b")()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("lock of b blocked by a")
	}
	// The same key waits.
	got := make(chan struct{})
	go func() {
		defer close(got)
		k.lock("a")()
	}()
	select {
	case <-got:
		t.Fatal("second lock of a did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	unlockA()
	<-got
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { k.lock("c")() })
	}
	wg.Wait()
	k.mu.Lock()
	assert.Empty(t, k.locks, "entries are dropped when unused")
	k.mu.Unlock()
}
