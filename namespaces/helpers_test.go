package namespaces

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
)

// newName returns a namespace name no other test uses.
func newName(t *testing.T) string {
	t.Helper()
	return "zt-ns-" + testutil.RandomHex(t, 4)
}

// createNS creates a namespace for t and deletes it in t.Cleanup, pass or
// fail, then checks that it is gone.
func createNS(t *testing.T) (name string, id Ident) {
	t.Helper()
	name = newName(t)
	require.NoError(t, Create(name))
	id, err := Identify(name)
	if err != nil {
		_ = Delete(name)
		require.NoError(t, err)
	}
	t.Cleanup(func() { deleteAndWait(t, name, id) })
	return name, id
}

// deleteAndWait deletes name and waits until namespace id is gone.
func deleteAndWait(t *testing.T, name string, id Ident) {
	t.Helper()
	assert.NoError(t, Delete(name))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	assert.NoError(t, WaitGone(ctx, id))
}

// link returns the readlink of an ns/net path, like "net:[4026531840]".
func link(t *testing.T, path string) string {
	t.Helper()
	l, err := os.Readlink(path)
	require.NoError(t, err)
	return l
}

// ownNS returns the link of the test process's own namespace.
func ownNS(t *testing.T) string {
	t.Helper()
	return link(t, "/proc/self/ns/net")
}

// strayThreads returns the threads of this process whose namespace is not
// want, as "tid net:[ID]".
func strayThreads(t *testing.T, want string) []string {
	t.Helper()
	tids, err := readNames("/proc/self/task")
	require.NoError(t, err)
	var stray []string
	for _, tid := range tids {
		l, err := os.Readlink("/proc/self/task/" + tid + "/ns/net")
		if err != nil {
			continue // the thread exited meanwhile
		}
		if l != want {
			stray = append(stray, tid+" "+l)
		}
	}
	return stray
}

// ipNetnsList returns the names `ip netns list` shows.
func ipNetnsList(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	require.NoError(t, err)
	var names []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// mountsAt counts the mounts whose mount point is path.
func mountsAt(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	n := 0
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			n++
		}
	}
	return n
}
