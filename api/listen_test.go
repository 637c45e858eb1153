package api_test

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
)

func TestListenUnixMakesAPrivateSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "znet", "znetd.sock")
	l, err := api.ListenUnix(path)
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket|0o600, fi.Mode())
	di, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o755, di.Mode())

	require.NoError(t, l.Close())
	_, err = os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist, "closing removes the socket")
}

func TestListenUnixRefusesALiveSocket(t *testing.T) {
	fake := &apitest.Fake{}
	path := apitest.Serve(t, fake)
	_, err := api.ListenUnix(path)
	require.ErrorIs(t, err, api.ErrSocketInUse)
	assert.Contains(t, err.Error(), "another znetd is serving "+path)

	_, err = api.NewClient(path).Networks(t.Context())
	assert.NoError(t, err, "the first server still answers")
}

func TestListenUnixReplacesAStaleSocket(t *testing.T) {
	checkGoroutines(t)
	path := filepath.Join(t.TempDir(), "znetd.sock")
	old, err := net.Listen("unix", path)
	require.NoError(t, err)
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, old.Close())

	l, err := api.ListenUnix(path)
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	srv := api.NewServer(&apitest.Fake{}, api.ServerOptions{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	_, err = api.NewClient(path).Networks(t.Context())
	assert.NoError(t, err)
	require.NoError(t, srv.Shutdown(t.Context()))
	assert.NoError(t, <-done)
}

func TestListenUnixLeavesOtherFilesAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "znetd.sock")
	require.NoError(t, os.WriteFile(path, []byte("keep me"), 0o644))
	_, err := api.ListenUnix(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a socket")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(b))
}

func TestListenUnixSocketIsRootOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the socket must be owned by uid 0")
	}
	path := filepath.Join(t.TempDir(), "znetd.sock")
	l, err := api.ListenUnix(path)
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket|0o600, fi.Mode())
	st, ok := fi.Sys().(*syscall.Stat_t)
	require.True(t, ok)
	assert.Equal(t, uint32(0), st.Uid, "owned by root")
}
