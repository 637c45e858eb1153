package bench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on
// every Linux architecture the kernel exports to user space).
const userHZ = 100

// procCPU returns the CPU seconds (user and system) process pid has used
// so far. With the kernel's tick accounting (no IRQ time accounting, as
// here) they include the softirq work the kernel ran on the process's
// behalf: for a data plane, the routing, firewall and bridge work of the
// packets it writes to its TUN.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcCPU(string(b))
}

// statFields returns the fields of a /proc/PID/stat line after the
// command name, f[0] being field 3 (state), at least n of them. The name
// (field 2) is in parentheses and may hold spaces and parentheses itself,
// so the fields are counted from the last ')'.
func statFields(stat string, n int) ([]string, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, errors.New("no command name in /proc stat line")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < n {
		return nil, fmt.Errorf("short /proc stat line: %d fields after the name", len(f))
	}
	return f, nil
}

// parseProcCPU returns utime+stime of a /proc/PID/stat line, in seconds.
func parseProcCPU(stat string) (float64, error) {
	// utime and stime are fields 14 and 15.
	f, err := statFields(stat, 13)
	if err != nil {
		return 0, err
	}
	var ticks uint64
	for _, s := range f[11:13] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu time %q: %w", s, err)
		}
		ticks += v
	}
	return float64(ticks) / userHZ, nil
}

// cpuOf returns the CPU seconds the processes pids used so far, summed.
func cpuOf(pids []int) (float64, error) {
	var sum float64
	for _, p := range pids {
		s, err := procCPU(p)
		if err != nil {
			return 0, err
		}
		sum += s
	}
	return sum, nil
}

// scheduling describes how the scheduler treats process pid, leaving out
// what differs between any two processes by construction (the ids of its
// session and autogroup): whether it leads its own session (so has an
// autogroup of its own), the autogroup's nice, its cpu cgroup, the CPUs it
// may run on, its nice and its scheduling policy. Two contenders compared
// in pairs must get the same text, or one gets a different share of the
// CPU than the other.
func scheduling(pid int) (string, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	cgroup, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	// Missing without CONFIG_SCHED_AUTOGROUP: then there is nothing to tell.
	autogroup, _ := os.ReadFile(fmt.Sprintf("/proc/%d/autogroup", pid))
	return describeScheduling(pid, string(stat), string(status), string(cgroup), string(autogroup))
}

// describeScheduling is scheduling from the texts of process pid's stat,
// status, cgroup and autogroup files.
func describeScheduling(pid int, stat, status, cgroup, autogroup string) (string, error) {
	// f[3] is field 6 (session), f[16] field 19 (nice), f[38] field 41 (policy).
	f, err := statFields(stat, 39)
	if err != nil {
		return "", err
	}
	session := "in a session of another process"
	if f[3] == strconv.Itoa(pid) {
		session = "own session"
	}
	var cpus string
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			cpus = strings.TrimSpace(v)
		}
	}
	cpuCgroup := "?"
	for _, l := range strings.Split(cgroup, "\n") {
		// "1:cpu:/x" (v1) or "0::/x" (v2, used when no v1 cpu line exists).
		if p := strings.SplitN(l, ":", 3); len(p) == 3 && (strings.Contains(","+p[1]+",", ",cpu,") || (p[1] == "" && cpuCgroup == "?")) {
			cpuCgroup = p[2]
		}
	}
	group := "no autogroup"
	if _, nice, ok := strings.Cut(strings.TrimSpace(autogroup), " "); ok {
		group = "autogroup " + nice
	}
	return fmt.Sprintf("%s, %s, cpu cgroup %s, cpus %s, nice %s, policy %s", session, group, cpuCgroup, cpus, f[16], f[38]), nil
}

// setAutogroupNice sets the nice of process pid's autogroup, the weight
// its session's scheduler group gets against the other sessions' groups.
// Needs CAP_SYS_NICE to lower it (root).
func setAutogroupNice(pid, nice int) error {
	err := os.WriteFile(fmt.Sprintf("/proc/%d/autogroup", pid), []byte(strconv.Itoa(nice)), 0)
	if err != nil {
		return fmt.Errorf("autogroup nice of %d: %w", pid, err)
	}
	return nil
}
