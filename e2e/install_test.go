package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// makeInstall runs `make install` from the repository's root with args
// and returns its output.
func makeInstall(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-C", "..", "install"}, args...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return string(out)
}

// TestInstall covers issue 16's `make install` and service files: the
// binaries and the unit (or the zinit file) land where asked, with the
// binaries' path in them, and systemd finds no fault in the unit.
func TestInstall(t *testing.T) {
	dir := t.TempDir()
	prefix, units, zinit, bin := filepath.Join(dir, "usr"), filepath.Join(dir, "units"), filepath.Join(dir, "zinit"), filepath.Join(dir, "build")
	makeInstall(t, "PREFIX="+prefix, "UNITDIR="+units, "BIN="+bin)
	for _, p := range []string{"znetd", "znetd-dataplane", "znet"} {
		fi, err := os.Stat(filepath.Join(prefix, "bin", p))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm(), p)
	}
	unitPath := filepath.Join(units, "znetd.service")
	unit, err := os.ReadFile(unitPath)
	require.NoError(t, err)
	assert.Contains(t, string(unit), "ExecStart="+filepath.Join(prefix, "bin", "znetd")+" ")
	assert.Contains(t, string(unit), "\nKillMode=process\n", "data planes outlive a restart of znetd")
	_, err = os.Stat(filepath.Join(zinit, "znetd.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the zinit file only with ZINIT=1")

	t.Run("systemd-analyze verify finds nothing", func(t *testing.T) {
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			t.Skip("systemd-analyze is not installed: the unit is not verified")
		}
		// It checks that ExecStart's binary exists: the one just installed.
		out, err := exec.Command("systemd-analyze", "verify", unitPath).CombinedOutput()
		assert.NoError(t, err, string(out))
		assert.Empty(t, strings.TrimSpace(string(out)), "warnings about the unit")
	})

	t.Run("the zinit file with ZINIT=1", func(t *testing.T) {
		makeInstall(t, "PREFIX="+prefix, "ZINITDIR="+zinit, "ZINIT=1", "BIN="+bin)
		b, err := os.ReadFile(filepath.Join(zinit, "znetd.yaml"))
		require.NoError(t, err)
		assert.Contains(t, string(b), "\nexec: "+filepath.Join(prefix, "bin", "znetd")+" ")
		assert.Contains(t, string(b), "\nafter:\n")
	})
}
