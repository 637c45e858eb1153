package dataplane

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDataplaneExeNextTo(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string) // makes (or not) Binary at path
		want  bool                            // whether it is chosen over self
	}{
		{"absent", func(*testing.T, string) {}, false},
		{"executable file", func(t *testing.T, p string) {
			require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755))
		}, true},
		{"not executable", func(t *testing.T, p string) {
			require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644))
		}, false},
		{"directory", func(t *testing.T, p string) {
			require.NoError(t, os.Mkdir(p, 0o755))
		}, false},
		{"symlink to executable", func(t *testing.T, p string) {
			target := filepath.Join(t.TempDir(), "real")
			require.NoError(t, os.WriteFile(target, []byte("#!/bin/sh\n"), 0o755))
			require.NoError(t, os.Symlink(target, p))
		}, true},
		{"dangling symlink", func(t *testing.T, p string) {
			require.NoError(t, os.Symlink(filepath.Join(t.TempDir(), "gone"), p))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			self := filepath.Join(dir, "znetd")
			require.NoError(t, os.WriteFile(self, []byte("#!/bin/sh\n"), 0o755))
			candidate := filepath.Join(dir, Binary)
			tt.setup(t, candidate)
			want := self
			if tt.want {
				want = candidate
			}
			assert.Equal(t, want, exeNextTo(self))
		})
	}
}

// TestDataplaneExe checks the default when nothing lies next to the test
// binary: the running executable itself.
func TestDataplaneExe(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(filepath.Dir(self), Binary)); err == nil {
		t.Skipf("%s lies next to the test binary", Binary)
	}
	got, err := Exe()
	require.NoError(t, err)
	assert.Equal(t, self, got)
}
