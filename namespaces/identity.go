package namespaces

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrProcessChanged is returned by OpenIdentified when the process of a
// /proc/PID path was replaced (its pid reused) while the path was opened.
var ErrProcessChanged = errors.New("the process behind the path changed while it was opened")

// Identity is a namespace's Ident and, for a path into /proc, the start
// time of the process behind it (field 22 of /proc/PID/stat, clock ticks
// after boot), which changes when the pid is reused, even by a process in
// the same namespace. It is what a workload records at attach.
type Identity struct {
	Ino       uint64 `json:"ino"`
	Cookie    uint64 `json:"cookie,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`
}

// IsZero reports whether id was never recorded.
func (id Identity) IsZero() bool { return id == Identity{} }

// SameNamespace reports whether id and other name the same namespace
// (StartTime aside): the same inode, and the same cookie when both are
// known.
func (id Identity) SameNamespace(other Identity) bool {
	if id.Ino != other.Ino {
		return false
	}
	return id.Cookie == 0 || other.Cookie == 0 || id.Cookie == other.Cookie
}

// procPath matches /proc/PID/ns/net and /proc/PID/task/TID/ns/net; the
// groups are PID and TID.
var procPath = regexp.MustCompile(`^/proc/([0-9]+)/(?:task/([0-9]+)/)?ns/net$`)

// OpenIdentified opens the network namespace at path, as Open does, and
// returns its identity read from the open handle, so that what is checked
// is what is used. For a /proc path the process's start time is read before
// and after the open: if they differ the pid was reused in between and
// ErrProcessChanged is returned. The caller closes the handle.
func OpenIdentified(path string) (netns.NsHandle, Identity, error) {
	path = resolve(path)
	stat := procStatPath(path)
	var before uint64
	if stat != "" {
		var err error
		if before, err = startTime(stat); err != nil {
			return netns.None(), Identity{}, fmt.Errorf("opening namespace %s: %w", path, err)
		}
	}
	h, err := Open(path)
	if err != nil {
		return netns.None(), Identity{}, err
	}
	id, err := identify(h)
	if err == nil && stat != "" {
		var after uint64
		after, err = startTime(stat)
		if err == nil && after != before {
			err = ErrProcessChanged
		}
		id.StartTime = before
	}
	if err != nil {
		_ = h.Close()
		return netns.None(), Identity{}, fmt.Errorf("opening namespace %s: %w", path, err)
	}
	return h, id, nil
}

// IdentityOf returns the identity of the namespace behind handle h
// (without a start time: a handle has no process).
func IdentityOf(h netns.NsHandle) (Identity, error) { return identify(h) }

func identify(h netns.NsHandle) (Identity, error) {
	id, err := identOf(h)
	if err != nil {
		return Identity{}, fmt.Errorf("reading the namespace's identity: %w", err)
	}
	return Identity{Ino: id.Ino, Cookie: id.Cookie}, nil
}

// Cookie returns the cookie of namespace h: a number the kernel gives each
// namespace and never gives another. A kernel without netns cookies gives
// an error wrapping unix.ENOPROTOOPT.
func Cookie(h netns.NsHandle) (uint64, error) {
	id, err := identOf(h)
	if err == nil && id.Cookie == 0 {
		err = unix.ENOPROTOOPT
	}
	if err != nil {
		return 0, fmt.Errorf("reading the namespace cookie: %w", err)
	}
	return id.Cookie, nil
}

// procStatPath returns the stat file of the process (or thread) behind a
// /proc namespace path, or "" when path is not one.
func procStatPath(path string) string {
	m := procPath.FindStringSubmatch(filepath.Clean(path))
	if m == nil {
		return ""
	}
	if m[2] != "" {
		return fmt.Sprintf("/proc/%s/task/%s/stat", m[1], m[2])
	}
	return fmt.Sprintf("/proc/%s/stat", m[1])
}

// startTime reads field 22 (starttime) of a /proc stat file. The command
// name (field 2) may hold spaces and parentheses, so fields are counted
// from the last ')'.
func startTime(stat string) (uint64, error) {
	b, err := os.ReadFile(stat)
	if err != nil {
		return 0, err
	}
	return parseStartTime(b)
}

func parseStartTime(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat: no ')'")
	}
	// After ") " comes field 3 (state); starttime is field 22.
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 20 {
		return 0, fmt.Errorf("malformed /proc stat: %d fields after the name", len(fields))
	}
	v, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed /proc stat starttime: %w", err)
	}
	return v, nil
}
