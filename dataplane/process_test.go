package dataplane

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
		for _, a := range Args("zn1", 1420, 0, "", "") {
			cmdline += a + "\x00"
		}
		assert.True(t, isDataplaneCmdline([]byte(cmdline), "zn1"))
	})
}

func TestProcHelpers(t *testing.T) {
	self := os.Getpid()
	assert.True(t, Alive(self))
	assert.Contains(t, []byte("RS"), ProcState(self))
	assert.False(t, IsDataplane(self, "zn1"), "the test binary is no data plane")
	assert.False(t, Alive(1<<30), "no such pid")
	assert.Zero(t, ProcState(1<<30))
	assert.False(t, IsDataplane(0, "zn1"))
}

func TestPidFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "zn1.pid")
	_, err := ReadPidFile(path)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, WritePidFile(path, 4242))
	require.NoError(t, WritePidFile(path, 4243), "write twice")
	pid, err := ReadPidFile(path)
	require.NoError(t, err)
	assert.Equal(t, 4243, pid)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temp files left")

	for _, bad := range []string{"", "x", "-3", "0"} {
		t.Run(fmt.Sprintf("bad %q", bad), func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, []byte(bad), 0o600))
			_, err := ReadPidFile(path)
			require.Error(t, err)
		})
	}
	require.NoError(t, RemoveIfExists(path))
	require.NoError(t, RemoveIfExists(path), "remove twice")
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	assert.Empty(t, Tail(path, 10), "missing file")
	require.NoError(t, os.WriteFile(path, []byte("first line\nlast line\n"), 0o600))
	assert.Equal(t, "last line", Tail(path, 10))
	assert.Equal(t, "first line\nlast line", Tail(path, 1000))
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
			assert.Equal(t, 2, Run(tt.args))
		})
	}
}

// TestResolverCmdline checks that a resolver-only process and a data plane
// of the same device are never taken for each other.
func TestResolverCmdline(t *testing.T) {
	resolver := "/bin/znetd\x00resolver\x00--ifname\x00zn1\x00--dns-socket\x00/run/zn1.dns\x00"
	got, ok := modeIfName([]byte(resolver), modeResolver)
	assert.True(t, ok)
	assert.Equal(t, "zn1", got)
	assert.False(t, isDataplaneCmdline([]byte(resolver), "zn1"), "a resolver is no data plane")
	_, ok = modeIfName([]byte("/bin/znetd\x00dataplane\x00--ifname\x00zn1\x00"), modeResolver)
	assert.False(t, ok, "a data plane is no resolver")
}

func TestRunResolverBadArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no ifname", []string{"resolver", "--dns-socket", "/tmp/x.dns"}},
		{"no socket", []string{"resolver", "--ifname", "zn1"}},
		{"bad ifname", []string{"resolver", "--ifname", "a/b", "--dns-socket", "/tmp/x.dns"}},
		{"extra argument", []string{"resolver", "--ifname", "zn1", "--dns-socket", "/tmp/x.dns", "extra"}},
		{"unknown flag", []string{"resolver", "--ifname", "zn1", "--mtu", "1420"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Exits before touching fd 3 or creating anything.
			assert.Equal(t, 2, Main(tt.args))
		})
	}
}
