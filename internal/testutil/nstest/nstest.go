package nstest

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"

	"github.com/znet/znet/namespaces"
)

// CreateNS creates namespace name and returns a handle to it. t.Cleanup
// closes the handle and deletes the namespace, pass or fail, then waits up
// to 5 s until the kernel freed it.
func CreateNS(t testing.TB, name string) netns.NsHandle {
	t.Helper()
	require.NoError(t, namespaces.Create(name))
	id, idErr := namespaces.Identify(name)
	h, err := namespaces.Open(name)
	t.Cleanup(func() {
		if err == nil {
			_ = h.Close()
		}
		assert.NoError(t, namespaces.Delete(name))
		if idErr == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			assert.NoError(t, namespaces.WaitGone(ctx, id), "namespace %s still held", name)
		}
	})
	require.NoError(t, err)
	require.NoError(t, idErr)
	return h
}

// ThreadsNamespace returns the namespace link (net:[ino]) of the calling
// process's threads, failing if they are not all in one.
func ThreadsNamespace(t *testing.T) string {
	t.Helper()
	tids, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	links := map[string]bool{}
	for _, tid := range tids {
		l, err := os.Readlink("/proc/self/task/" + tid.Name() + "/ns/net")
		if err == nil {
			links[l] = true
		}
	}
	require.Len(t, links, 1, "threads in several namespaces: %v", links)
	for l := range links {
		return l
	}
	return ""
}

// UDPPorts returns what `ss -Huln` shows inside namespace ns.
func UDPPorts(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "ss", "-Huln").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// Listens reports whether ss output shows a socket on port.
func Listens(ssOut string, port int) bool {
	for line := range strings.Lines(ssOut) {
		f := strings.Fields(line)
		if len(f) >= 4 && strings.HasSuffix(f[3], ":"+strconv.Itoa(port)) {
			return true
		}
	}
	return false
}
