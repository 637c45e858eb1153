package nodelock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultDir is where znetd keeps node locks.
const DefaultDir = "/run/znet"

// ErrHeld is returned (wrapped, with the holder's pid and state dir) by
// Acquire when another process holds the node id's lock.
var ErrHeld = errors.New("node id is in use")

// Lock is a held node lock.
type Lock struct {
	f    *os.File
	path string
}

// Path returns the lock file of nodeID in dir.
func Path(dir, nodeID string) string {
	return filepath.Join(dir, "node-"+nodeID+".lock")
}

// Acquire takes the lock of nodeID in dir for a znetd whose state dir is
// stateDir, without waiting. nodeID must be a valid node id (a DNS label:
// no slash can reach the path).
func Acquire(dir, nodeID, stateDir string) (*Lock, error) {
	if nodeID == "" || strings.ContainsAny(nodeID, "/\x00") {
		return nil, fmt.Errorf("node id %q: %w", nodeID, os.ErrInvalid)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the lock directory: %w", err)
	}
	path := Path(dir, nodeID)
	for range 10 {
		l, err := tryLock(path)
		if err != nil {
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("node id %s is already run by %s (lock %s); stop that znetd or choose another --node-id: %w",
					nodeID, holder(path), path, ErrHeld)
			}
			return nil, fmt.Errorf("locking node id %s (%s): %w", nodeID, path, err)
		}
		if l == nil {
			continue // the file was replaced under us: lock the new one
		}
		if err := l.record(stateDir); err != nil {
			_ = l.Close()
			return nil, err
		}
		return l, nil
	}
	return nil, fmt.Errorf("locking node id %s (%s): the lock file keeps changing", nodeID, path)
}

// tryLock locks the file at path. It returns nil, nil when the file it
// locked is no longer the one at path: its holder removed it on exit
// between our open and our lock.
func tryLock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, err
	}
	var have, at unix.Stat_t
	if unix.Fstat(int(f.Fd()), &have) != nil || unix.Stat(path, &at) != nil || have.Ino != at.Ino || have.Dev != at.Dev {
		_ = f.Close()
		return nil, nil
	}
	return &Lock{f: f, path: path}, nil
}

// record writes who holds the lock.
func (l *Lock) record(stateDir string) error {
	if abs, err := filepath.Abs(stateDir); err == nil {
		stateDir = abs
	}
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("writing %s: %w", l.path, err)
	}
	if _, err := l.f.WriteAt(fmt.Appendf(nil, "pid %d\nstate-dir %s\n", os.Getpid(), stateDir), 0); err != nil {
		return fmt.Errorf("writing %s: %w", l.path, err)
	}
	return nil
}

// holder describes the holder of the lock at path from what it wrote.
func holder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "another znetd"
	}
	var pid, dir string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "pid":
			pid = v
		case "state-dir":
			dir = v
		}
	}
	if pid == "" {
		return "another znetd"
	}
	return fmt.Sprintf("znetd pid %s with state dir %s", pid, dir)
}

// Close removes the lock file and releases the lock. Removing it while
// still holding it is safe: Acquire checks that the file it locked is
// still the one at the path.
func (l *Lock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := os.Remove(l.path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	err = errors.Join(err, l.f.Close())
	l.f = nil
	return err
}
