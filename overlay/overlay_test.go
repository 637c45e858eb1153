package overlay

import (
	"errors"
	"os"
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
