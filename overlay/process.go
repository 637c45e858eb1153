package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// procDir is where processes are looked up.
const procDir = "/proc"

// dupFd duplicates fd with close-on-exec set.
func dupFd(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}

// dataplaneArgs returns the arguments after the program name that start
// the data plane of ifname.
func dataplaneArgs(ifname string, mtu, listenPort int, dnsSocket, dropsFile string) []string {
	args := []string{"dataplane", "--ifname", ifname, "--mtu", strconv.Itoa(mtu)}
	if listenPort != 0 {
		args = append(args, "--listen-port", strconv.Itoa(listenPort))
	}
	if dnsSocket != "" {
		args = append(args, "--dns-socket", dnsSocket)
	}
	if dropsFile != "" {
		args = append(args, "--drops-file", dropsFile)
	}
	return args
}

// isDataplaneCmdline reports whether cmdline (NUL-separated, as in
// /proc/PID/cmdline) is a data plane of ifname: the program name followed by
// "dataplane" and, somewhere after it, "--ifname" ifname (or
// "--ifname=ifname").
func isDataplaneCmdline(cmdline []byte, ifname string) bool {
	got, ok := dataplaneIfName(cmdline)
	return ok && got == ifname
}

// dataplaneIfName returns the device a data plane's cmdline names, and
// whether cmdline is a data plane's at all.
func dataplaneIfName(cmdline []byte) (string, bool) {
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) < 2 || args[1] != "dataplane" {
		return "", false
	}
	for i := 2; i < len(args); i++ {
		switch {
		case args[i] == "--ifname" || args[i] == "-ifname":
			if i+1 < len(args) {
				return args[i+1], true
			}
			return "", false
		case strings.HasPrefix(args[i], "--ifname=") || strings.HasPrefix(args[i], "-ifname="):
			_, v, _ := strings.Cut(args[i], "=")
			return v, true
		}
	}
	return "", false
}

// procState returns the state letter of process pid (R, S, Z, ...), or 0
// when there is no such process.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", procDir, pid))
	if err != nil {
		return 0
	}
	// pid (comm) S ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	s := procState(pid)
	return s != 0 && s != 'Z' && s != 'X'
}

// isDataplane reports whether pid is a live data plane of ifname.
func isDataplane(pid int, ifname string) bool {
	if pid <= 0 || !alive(pid) {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("%s/%d/cmdline", procDir, pid))
	if err != nil {
		return false
	}
	return isDataplaneCmdline(cmdline, ifname)
}

// runningDataplanes returns the pid of every live data plane on the
// machine (but this process), by device name, read from /proc.
func runningDataplanes() map[string]int {
	out := map[string]int{}
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("%s/%d/cmdline", procDir, pid))
		if err != nil {
			continue
		}
		if ifname, ok := dataplaneIfName(cmdline); ok && alive(pid) {
			out[ifname] = pid
		}
	}
	return out
}

// netnsIno returns the inode of the network namespace of process pid.
func netnsIno(pid int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("%s/%d/ns/net", procDir, pid), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// pathIno returns the inode of the namespace file at path.
func pathIno(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// readPidFile reads a pid written by writePidFile.
func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("reading pid file %s: bad pid %q", path, b)
	}
	return pid, nil
}

// writePidFile writes pid to path atomically.
func writePidFile(path string, pid int) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing pid file: %w", err)
	}
	_, werr := tmp.WriteString(strconv.Itoa(pid) + "\n")
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing pid file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing pid file: %w", err)
	}
	return nil
}

// removeIfExists removes path, ignoring a missing file.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// tail returns the last n bytes of the file at path, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return ""
	}
	return strings.TrimSpace(string(buf))
}
