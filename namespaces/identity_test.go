package namespaces

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
)

func TestParseStartTime(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want uint64
		ok   bool
	}{
		{"plain", "42 (sleep) S 1 42 42 0 -1 4194560 97 0 0 0 0 0 0 0 20 0 1 0 123456 2277376 224 18446744073709551615", 123456, true},
		// A command may name itself anything, ") 1 2 3" included.
		{"name with parentheses and spaces", "7 (a) b (c) 1 2) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0", 99, true},
		{"truncated", "7 (x) S 1 7", 0, false},
		{"no name", "7 x S", 0, false},
		{"not a number", "42 (sleep) S 1 42 42 0 -1 4194560 97 0 0 0 0 0 0 0 20 0 1 0 abc 0", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStartTime([]byte(tt.stat))
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestProcStatPath(t *testing.T) {
	for path, want := range map[string]string{
		"/proc/12/ns/net":         "/proc/12/stat",
		"/proc/12/task/13/ns/net": "/proc/12/task/13/stat",
		"/proc/12/../13/ns/net":   "/proc/13/stat", // cleaned first
		"/proc/self/ns/net":       "",              // znetd itself: refused elsewhere
		"/run/netns/web":          "",
		"/proc/12/ns/mnt":         "",
	} {
		assert.Equal(t, want, procStatPath(path), path)
	}
}

// TestOpenIdentified checks that the identity tells a namespace made again
// under the same name, and a process's namespace, from the ones before.
func TestOpenIdentified(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	name, _ := createNS(t)
	h, first, err := OpenIdentified(name)
	require.NoError(t, err)
	require.NoError(t, h.Close())
	h, again, err := OpenIdentified(Path(name))
	require.NoError(t, err)
	require.NoError(t, h.Close())
	assert.Equal(t, first, again, "the same namespace")
	assert.NotZero(t, first.Cookie, "this kernel has netns cookies")
	assert.Zero(t, first.StartTime, "no process behind a named namespace")

	id, err := Identify(name)
	require.NoError(t, err)
	deleteAndWait(t, name, id)
	require.NoError(t, Create(name))
	h, remade, err := OpenIdentified(name)
	require.NoError(t, err)
	require.NoError(t, h.Close())
	assert.False(t, first.SameNamespace(remade), "made again: %+v then %+v", first, remade)

	cmd := exec.Command("sleep", "60")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()
	path := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	h, proc, err := OpenIdentified(path)
	require.NoError(t, err)
	require.NoError(t, h.Close())
	own, err := IdentityOf(openNS(t, "/proc/self/ns/net"))
	require.NoError(t, err)
	assert.True(t, own.SameNamespace(proc), "sleep runs in the test's namespace")
	assert.NotZero(t, proc.StartTime)

	_ = cmd.Process.Kill()
	_, _ = cmd.Process.Wait()
	_, _, err = OpenIdentified(path)
	assert.ErrorIs(t, err, os.ErrNotExist, "a dead process's path is gone")
}

// BenchmarkOpenIdentified measures what an attach, a repair and every
// workload of a list pay to identify a namespace.
func BenchmarkOpenIdentified(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	cmd := exec.Command("sleep", "60")
	require.NoError(b, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()
	path := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	for b.Loop() {
		h, _, err := OpenIdentified(path)
		if err != nil {
			b.Fatal(err)
		}
		_ = h.Close()
	}
}
