package dataplane

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

// DupFd duplicates fd with close-on-exec set.
func DupFd(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}

// Args returns the arguments after the program name that start
// the data plane of ifname.
func Args(ifname string, mtu, listenPort int, dnsSocket, dropsFile string) []string {
	args := []string{modeDataplane, "--ifname", ifname, "--mtu", strconv.Itoa(mtu)}
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
	got, ok := modeIfName(cmdline, modeDataplane)
	return ok && got == ifname
}

// modeIfName returns the device a cmdline of the program in mode
// (modeDataplane, modeResolver) names, and whether cmdline is one of that
// mode at all.
func modeIfName(cmdline []byte, mode string) (string, bool) {
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) < 2 || args[1] != mode {
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

// ProcState returns the state letter of process pid (R, S, Z, ...), or 0
// when there is no such process.
func ProcState(pid int) byte {
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

// Alive reports whether process pid exists and is not a zombie.
func Alive(pid int) bool {
	s := ProcState(pid)
	return s != 0 && s != 'Z' && s != 'X'
}

// IsDataplane reports whether pid is a live data plane of ifname.
func IsDataplane(pid int, ifname string) bool {
	return isMode(pid, modeDataplane, ifname)
}

// isMode reports whether pid is a live process of the program in mode for
// ifname.
func isMode(pid int, mode, ifname string) bool {
	if pid <= 0 || !Alive(pid) {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("%s/%d/cmdline", procDir, pid))
	if err != nil {
		return false
	}
	got, ok := modeIfName(cmdline, mode)
	return ok && got == ifname
}

// Running returns the pid of every live data plane on the
// machine (but this process), by device name, read from /proc.
func Running() map[string]int { return running(modeDataplane) }

// running returns the pid of every live process of the program in mode
// on the machine (but this process), by device name, read from /proc.
func running(mode string) map[string]int {
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
		if ifname, ok := modeIfName(cmdline, mode); ok && Alive(pid) {
			out[ifname] = pid
		}
	}
	return out
}

// NetnsIno returns the inode of the network namespace of process pid.
func NetnsIno(pid int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("%s/%d/ns/net", procDir, pid), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// PathIno returns the inode of the namespace file at path.
func PathIno(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// ReadPidFile reads a pid written by WritePidFile.
func ReadPidFile(path string) (int, error) {
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

// WritePidFile writes pid to path atomically.
func WritePidFile(path string, pid int) error {
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

// RemoveIfExists removes path, ignoring a missing file.
func RemoveIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// tail returns the last n bytes of the file at path, for error messages.
func Tail(path string, n int64) string {
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
