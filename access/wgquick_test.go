package access

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWGQuickStrip has Debian's wg-quick read rendered configs. `wg-quick
// strip` only parses the file (it changes nothing on the machine) and prints
// what it would hand to `wg setconf`: everything but the wg-quick keys. So
// Address, DNS and MTU must be recognised and gone, and every other line
// kept as it was.
func TestWGQuickStrip(t *testing.T) {
	wgQuick, err := exec.LookPath("wg-quick")
	if err != nil {
		t.Skip("wg-quick is not installed (Debian: apt-get install wireguard-tools)")
	}
	if os.Geteuid() != 0 {
		t.Skip("wg-quick re-runs itself with sudo unless it is root")
	}
	noKey := designConfig()
	noKey.PrivateKey = ""
	bare := Config{PeerPublicKey: nodeKey}
	for name, c := range map[string]Config{"design": designConfig(), "without key": noKey, "only the peer key": bare} {
		t.Run(name, func(t *testing.T) {
			text := c.Render()
			file := filepath.Join(t.TempDir(), "wgtest0.conf") // the name must be an interface name
			require.NoError(t, os.WriteFile(file, []byte(text), 0o600))
			out, err := exec.Command(wgQuick, "strip", file).CombinedOutput()
			require.NoError(t, err, "wg-quick strip: %s", out)

			var want []string
			for line := range strings.Lines(text) {
				if !strings.HasPrefix(line, "Address =") && !strings.HasPrefix(line, "DNS =") && !strings.HasPrefix(line, "MTU =") {
					want = append(want, line)
				}
			}
			// strip echoes the kept lines, so one newline more.
			assert.Equal(t, strings.Join(want, "")+"\n", string(out))
		})
	}
}
