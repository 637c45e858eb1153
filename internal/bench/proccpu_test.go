package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseProcCPU checks utime+stime of /proc stat lines, a command name
// with spaces and parentheses among them.
func TestParseProcCPU(t *testing.T) {
	tail := " S 1 2 3 0 -1 4194560 100 0 0 0 250 125 0 0 20 0 8 0 100 1000 10 18446744073709551615"
	for _, name := range []string{"(znetd-dataplane)", "(a b) c)"} {
		got, err := parseProcCPU("42 " + name + tail)
		require.NoError(t, err, name)
		assert.InDelta(t, 3.75, got, 1e-9, name)
	}
	_, err := parseProcCPU("42 (x) S 1 2")
	assert.ErrorContains(t, err, "short")
	_, err = parseProcCPU("42 x S")
	assert.ErrorContains(t, err, "no command name")
}

// TestProcCPUCountsWork checks that procCPU of this process grows while it
// works: the reading the CPU per GB figures are made of.
func TestProcCPUCountsWork(t *testing.T) {
	before, err := procCPU(os.Getpid())
	require.NoError(t, err)
	x := 0
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
		x++
	}
	after, err := procCPU(os.Getpid())
	require.NoError(t, err)
	assert.Greater(t, after, before, "work of %d loops not counted", x)
}

// TestDescribeScheduling checks the text two contenders' processes are
// compared by: what differs between any two processes (session and
// autogroup ids) is left out, the rest is in.
func TestDescribeScheduling(t *testing.T) {
	stat := func(pid, sid string) string {
		return pid + " (wg (x)) S 1 " + sid + " " + sid + " 0 -1 4194560 1 0 0 0 5 6 0 0 20 -5 8 0 100 1000 10 " +
			"1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 0 2 0 0 0"
	}
	status := "Name:\tx\nCpus_allowed_list:\t0-1\n"
	cgroup := "2:cpuacct:/\n1:cpu:/lab\n0::/\n"
	a, err := describeScheduling(100, stat("100", "100"), status, cgroup, "/autogroup-7 nice 0\n")
	require.NoError(t, err)
	b, err := describeScheduling(200, stat("200", "200"), status, cgroup, "/autogroup-9 nice 0\n")
	require.NoError(t, err)
	assert.Equal(t, "own session, autogroup nice 0, cpu cgroup /lab, cpus 0-1, nice -5, policy 2", a)
	assert.Equal(t, a, b)
	c, err := describeScheduling(300, stat("300", "100"), status, "0::/bench\n", "/autogroup-7 nice 0\n")
	require.NoError(t, err)
	assert.Equal(t, "in a session of another process, autogroup nice 0, cpu cgroup /bench, cpus 0-1, nice -5, policy 2", c)
	self, err := scheduling(os.Getpid())
	require.NoError(t, err)
	assert.Contains(t, self, "cpus ")
}

// TestStartNicedSetsAutogroupNice checks that a command the data-plane
// part runs (iperf3, ping) gets a session, so an autogroup, of its own
// with the nice asked for: what gives both contenders the same weight
// against the machine's other work.
func TestStartNicedSetsAutogroupNice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to lower a nice")
	}
	if _, err := os.Stat("/proc/self/autogroup"); err != nil {
		t.Skip("kernel without autogroups")
	}
	cmd := exec.Command("sleep", "5")
	require.NoError(t, startNiced(cmd, -5))
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ag, err := os.ReadFile(fmt.Sprintf("/proc/%d/autogroup", cmd.Process.Pid))
	require.NoError(t, err)
	assert.Contains(t, string(ag), "nice -5")
	mine, err := os.ReadFile("/proc/self/autogroup")
	require.NoError(t, err)
	// The kernel shows nothing for the default autogroup: that of a
	// process no ancestor of which started a session since boot (a CI
	// runner's test process can be one).
	assert.NotEqual(t, autogroupName(string(mine)), autogroupName(string(ag)), "not an autogroup of its own")
	assert.NotEmpty(t, autogroupName(string(ag)), "the command is in the default autogroup")
	s, err := scheduling(cmd.Process.Pid)
	require.NoError(t, err)
	assert.Contains(t, s, "own session, autogroup nice -5")
}

// TestRunRefusesBadNice checks that a nice out of the kernel's range is
// refused before anything is built.
func TestRunRefusesBadNice(t *testing.T) {
	for _, n := range []int{-21, 20} {
		_, err := Run(context.Background(), Config{Parts: []string{"dataplane"}, Nice: n})
		assert.ErrorContains(t, err, fmt.Sprintf("nice %d: out of -20..19", n))
	}
}

// autogroupName is the group's name in a /proc/PID/autogroup text
// ("/autogroup-7 nice 0"), or "" for the default group, which the kernel
// prints as nothing.
func autogroupName(text string) string {
	if f := strings.Fields(text); len(f) > 0 {
		return f[0]
	}
	return ""
}
