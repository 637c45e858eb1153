package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
)

// bin holds the znetd and znet binaries built for this run.
var bin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("e2e: skipping, needs root")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "znet-e2e-bin")
	if err != nil {
		panic(err)
	}
	// Built as make build does: znetd runs znetd-dataplane from its side.
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/znet/znet/cmd/znetd",
		"github.com/znet/znet/cmd/znetd-dataplane", "github.com/znet/znet/cmd/znet")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Println("e2e: building binaries:", err)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// randName returns a short random suffix for names this test run makes.
func randName() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (it crashes the program instead)
	return hex.EncodeToString(b)
}

// newLab brings up a lab of n nodes for one test and removes it afterwards,
// checking that nothing of it is left.
func newLab(t testing.TB, n int) *lab.Lab {
	t.Helper()
	return newLabWith(t, lab.Config{Nodes: n})
}

// newLabWith is newLab for the lab c describes; the name, directory,
// binary and backend are the test's.
func newLabWith(t testing.TB, c lab.Config) *lab.Lab {
	t.Helper()
	name := "zt" + randName()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.Name, c.Dir, c.Znetd, c.Wireguard = name, t.TempDir(), filepath.Join(bin, "znetd"), "auto"
	l, err := lab.Up(ctx, c)
	t.Cleanup(func() {
		if t.Failed() && l != nil {
			for _, node := range l.Nodes {
				if b, err := os.ReadFile(node.Log); err == nil {
					t.Logf("znetd log of %s:\n%s", node.ID, tail(string(b), 60))
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if l != nil {
			require.NoError(t, lab.Down(ctx, l.Dir))
		}
		left, _ := namespaces.List(name)
		require.Empty(t, left, "namespaces left behind")
		require.Empty(t, leftoverProcesses(name), "processes left behind")
	})
	require.NoError(t, err)
	return l
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// leftoverProcesses lists processes whose command line mentions the lab's
// name (its znetd and data planes carry it in their arguments or paths).
func leftoverProcesses(name string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, name) && (strings.Contains(cmd, "znetd") || strings.Contains(cmd, "dataplane")) {
			out = append(out, e.Name()+": "+cmd)
		}
	}
	return out
}

// znet runs the CLI against node's socket and returns its stdout; a
// non-zero exit fails the test.
func znet(t testing.TB, node lab.Node, args ...string) string {
	t.Helper()
	out, errOut, err := znetRun(node, "", args...)
	require.NoError(t, err, "znet %s: %s", strings.Join(args, " "), errOut)
	return out
}

// znetRun runs the CLI with stdin and returns stdout, stderr and the error.
func znetRun(node lab.Node, stdin string, args ...string) (string, string, error) {
	cmd := exec.Command(filepath.Join(bin, "znet"), append([]string{"--socket", node.Socket}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// znetJSON runs the CLI with --json and decodes its answer into v.
func znetJSON(t testing.TB, node lab.Node, v any, args ...string) {
	t.Helper()
	out := znet(t, node, append(args, "--json")...)
	require.NoError(t, json.Unmarshal([]byte(out), v), "decoding %q", out)
}

// workloadNS makes a named namespace for a workload (as a container
// runtime would, with `ip netns add`) and removes it after the test.
func workloadNS(t testing.TB, name string) string {
	t.Helper()
	full := "ztw" + randName() + "-" + name
	out, err := exec.Command("ip", "netns", "add", full).CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", full).Run() // the test may have deleted it
		_ = os.RemoveAll(filepath.Join("/etc/netns", full))
	})
	return full
}

// inNS runs a command inside the named namespace.
func inNS(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// pingOK pings dst from namespace ns a few times and reports success.
func pingOK(ns, dst string) bool {
	_, err := inNS(ns, "ping", "-c", "2", "-i", "0.2", "-W", "1", dst)
	return err == nil
}
