package dataplane

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// dataplaneEnv makes the test binary act as the program (see TestMain).
const dataplaneEnv = "ZNET_TEST_DATAPLANE"

func TestMain(m *testing.M) {
	if os.Getenv(dataplaneEnv) == "1" {
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// udpPorts returns what `ss -Huln` shows inside namespace ns.
func udpPorts(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "ss", "-Huln").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// listens reports whether ss output shows a socket on port.
func listens(ssOut string, port int) bool {
	for line := range strings.Lines(ssOut) {
		f := strings.Fields(line)
		if len(f) >= 4 && strings.HasSuffix(f[3], ":"+strconv.Itoa(port)) {
			return true
		}
	}
	return false
}
