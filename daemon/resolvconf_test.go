package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/store"
)

// TestResolvConfReadableUnderStrictUmask writes a workload's resolv.conf
// with the umask of the shipped systemd unit (UMask=0077): the file and
// its directory must still be readable by the workload's unprivileged
// processes, or their name lookups fail.
func TestResolvConfReadableUnderStrictUmask(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	name := "zt-rc-" + testutil.RandomHex(t, 4)
	dir := filepath.Join("/etc/netns", name)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	w := &store.Workload{Name: "web", Network: "shop", NetNS: filepath.Join(namespaces.Dir, name)}
	path, err := writeResolvConf("/etc/netns", w, "shop", "node1", netip.MustParseAddr("10.20.1.1"))
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm(), "resolv.conf")
	di, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), di.Mode().Perm(), "its directory")
}
