package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/znet/znet/api/apitest"
)

// testNow is the clock of every CLI run in the tests.
var testNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// result is what one CLI run produced.
type result struct {
	code           int
	stdout, stderr string
}

// newFake serves a fresh fake daemon and returns it with its socket path.
func newFake(t *testing.T) (*apitest.Fake, string) {
	t.Helper()
	fake := &apitest.Fake{}
	return fake, apitest.Serve(t, fake)
}

// cli runs the CLI in-process with stdin and args, with the clock fixed at
// testNow and no ZNET_SOCKET in its environment.
func cli(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := newApp(t.Context(), strings.NewReader(stdin), &stdout, &stderr)
	a.now = func() time.Time { return testNow }
	a.getenv = func(string) string { return "" }
	code := a.run(args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}
