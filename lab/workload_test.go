package lab

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/namespaces"
)

func skipUnlessRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// TestWorkloadNamespaces makes workload namespaces in a lab without nodes
// and checks that they are recorded, kept by a reload, and removed by Down
// with their /etc/netns dirs.
func TestWorkloadNamespaces(t *testing.T) {
	skipUnlessRoot(t)
	b := make([]byte, 3)
	_, err := rand.Read(b)
	require.NoError(t, err)
	name := "zt-lab" + hex.EncodeToString(b)
	dir := t.TempDir()
	l := &Lab{Name: name, Dir: dir, Internet: name + "-inet"}
	require.NoError(t, l.save())
	t.Cleanup(func() {
		// Down removes them when the test gets that far; this is for when it does not.
		for _, ns := range []string{l.WorkloadNS(1), l.WorkloadNS(2)} {
			_ = namespaces.Delete(ns)
			_ = os.RemoveAll(filepath.Join(etcNetNS, ns))
		}
	})

	assert.Equal(t, name+"-w1", l.WorkloadNS(1))
	_, err = l.AddWorkloadNS("zt-other-w1")
	require.Error(t, err, "a name outside the lab's prefix")

	for i := 1; i <= 2; i++ {
		path, err := l.AddWorkloadNS(l.WorkloadNS(i))
		require.NoError(t, err)
		assert.Equal(t, namespaces.Path(l.WorkloadNS(i)), path)
		assert.True(t, namespaces.IsNetNS(path))
	}
	_, err = l.AddWorkloadNS(l.WorkloadNS(1)) // idempotent
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(etcNetNS, l.WorkloadNS(1)), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(etcNetNS, l.WorkloadNS(1), "resolv.conf"), []byte("nameserver 10.30.0.1\n"), 0o644))

	loaded, err := Load(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{name + "-w1", name + "-w2"}, loaded.Workloads)

	require.NoError(t, Down(t.Context(), dir))
	left, err := namespaces.List(name)
	require.NoError(t, err)
	assert.Empty(t, left)
	assert.NoDirExists(t, filepath.Join(etcNetNS, l.WorkloadNS(1)))
	assert.NoDirExists(t, dir)
	require.NoError(t, Down(t.Context(), dir), "down twice")
}
