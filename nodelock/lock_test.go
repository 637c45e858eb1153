package nodelock

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const helperEnv = "ZNET_NODELOCK_HELPER"

func TestMain(m *testing.M) {
	// As a helper: take the lock given in the environment and wait for
	// stdin to close, as a second znetd process would hold it.
	if dir := os.Getenv(helperEnv); dir != "" {
		l, err := Acquire(dir, "n1", "/var/lib/other")
		if err != nil {
			_, _ = os.Stdout.WriteString("error: " + err.Error() + "\n")
			os.Exit(1)
		}
		_, _ = os.Stdout.WriteString("locked\n")
		_, _ = os.Stdin.Read(make([]byte, 1))
		_ = l.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestAcquire(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir, "n1", "/var/lib/znet")
	require.NoError(t, err)
	b, err := os.ReadFile(Path(dir, "n1"))
	require.NoError(t, err)
	assert.Equal(t, "pid "+strconv.Itoa(os.Getpid())+"\nstate-dir /var/lib/znet\n", string(b))

	t.Run("another process is refused and told who holds it", func(t *testing.T) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+dir)
		out, err := cmd.Output()
		require.Error(t, err)
		assert.Contains(t, string(out), "node id n1 is already run by znetd pid "+strconv.Itoa(os.Getpid())+" with state dir /var/lib/znet")
		assert.Contains(t, string(out), Path(dir, "n1"))
	})

	t.Run("another node id is free", func(t *testing.T) {
		l2, err := Acquire(dir, "n2", "/var/lib/znet2")
		require.NoError(t, err)
		require.NoError(t, l2.Close())
	})

	t.Run("released on close, the file goes", func(t *testing.T) {
		require.NoError(t, l.Close())
		require.NoError(t, l.Close(), "twice")
		_, err := os.Stat(Path(dir, "n1"))
		assert.ErrorIs(t, err, os.ErrNotExist)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+dir)
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		var out strings.Builder
		cmd.Stdout = &out
		require.NoError(t, cmd.Start())
		require.NoError(t, stdin.Close())
		require.NoError(t, cmd.Wait())
		assert.Equal(t, "locked\n", out.String())
	})

	t.Run("bad node id", func(t *testing.T) {
		_, err := Acquire(dir, "../x", "/s")
		assert.ErrorIs(t, err, os.ErrInvalid)
	})
}
