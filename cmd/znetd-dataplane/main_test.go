package main

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runMainEnv makes the test binary run main instead of the tests.
const runMainEnv = "ZNET_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// TestBadArguments runs the program with arguments it must refuse before
// touching anything: it exits with 2 and prints its usage.
func TestBadArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no ifname", []string{"dataplane", "--mtu", "1420"}},
		{"bad ifname", []string{"dataplane", "--ifname", "a/b"}},
		{"stray argument", []string{"dataplane", "--ifname", "zt0", "extra"}},
		{"unknown flag", []string{"--ifname", "zt0", "--nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := exec.Command(os.Args[0], tt.args...)
			cmd.Env = append(os.Environ(), runMainEnv+"=1")
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "stderr: %s", stderr.String())
			assert.Equal(t, 2, ee.ExitCode())
			assert.Contains(t, stderr.String(), "-ifname")
		})
	}
}
