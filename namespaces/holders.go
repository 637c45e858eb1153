package namespaces

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// procDir is where WaitGone and Holders look for processes.
const procDir = "/proc"

// ID returns the inode number identifying the namespace at path (a name in
// Dir or an nsfs path). It is the number in the "net:[ID]" links of
// /proc/PID/ns/net and stays the same while the namespace lives; the kernel
// may hand it to a new namespace once this one is gone.
func ID(path string) (uint64, error) {
	h, err := Open(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = h.Close() }()
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		return 0, fmt.Errorf("reading namespace %s: %w", resolve(path), err)
	}
	return st.Ino, nil
}

// WaitGone waits until no process task (/proc/*/task/*/ns/net) and no open
// file descriptor (/proc/*/fd/*, whether it reads "net:[ID]" or is a handle
// opened through a bind mount) refers to the namespace id any more, or ctx
// ends. Used after Delete, so that deleted really means gone: the kernel
// frees the namespace and its links once nothing holds it. It polls, first
// every few milliseconds and then every 100ms. When ctx ends first the error
// wraps ctx.Err() and names the pids that still hold the namespace.
//
// What /proc does not show is not waited for: sockets made in the namespace
// but held by a process outside it, bind mounts in other mount namespaces,
// processes of other pid namespaces, and references the kernel keeps for
// itself. A caller that holds a handle of the namespace itself waits until
// ctx ends. Once the namespace is gone the kernel may give id to a new one,
// so wait soon after Delete.
func WaitGone(ctx context.Context, id uint64) error {
	delay := 2 * time.Millisecond
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		held, err := scanHolders(id, true)
		if err != nil {
			return fmt.Errorf("waiting for namespace net:[%d]: %w", id, err)
		}
		if len(held) == 0 {
			return nil
		}
		timer.Reset(delay)
		select {
		case <-ctx.Done():
			pids, _ := scanHolders(id, false)
			return fmt.Errorf("waiting for namespace net:[%d], held by pids %v: %w", id, pids, ctx.Err())
		case <-timer.C:
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// Holders returns the pids of processes that are in, or hold an fd of,
// namespace id, sorted (for error messages and leak checks). The calling
// process is among them while one of its threads is in the namespace or it
// holds a handle. Processes that vanish or cannot be read during the scan
// are left out; it needs root to see every process.
func Holders(id uint64) ([]int, error) {
	pids, err := scanHolders(id, false)
	if err != nil {
		return nil, fmt.Errorf("finding holders of namespace net:[%d]: %w", id, err)
	}
	return pids, nil
}

// scanHolders returns the pids in procDir that hold namespace id, sorted;
// with first it stops at the first one found.
func scanHolders(id uint64, first bool) ([]int, error) {
	// Every namespace lives on the one nsfs superblock; its device tells an
	// nsfs inode from a file elsewhere with the same inode number.
	var own unix.Stat_t
	if err := unix.Stat(procDir+"/self/ns/net", &own); err != nil {
		return nil, err
	}
	ns := nsFile{dev: own.Dev, ino: id, link: "net:[" + strconv.FormatUint(id, 10) + "]"}
	names, err := readNames(procDir)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue // not a process
		}
		if ns.heldBy(procDir + "/" + name) {
			pids = append(pids, pid)
			if first {
				break
			}
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// nsFile identifies one namespace in /proc.
type nsFile struct {
	dev, ino uint64
	link     string // as /proc/PID/ns/net reads: "net:[ino]"
}

// heldBy reports whether a thread of the process at dir is in the namespace,
// or the process has an fd of it open.
func (ns nsFile) heldBy(dir string) bool {
	tasks, _ := readNames(dir + "/task")
	for _, tid := range tasks {
		if l, _ := os.Readlink(dir + "/task/" + tid + "/ns/net"); l == ns.link {
			return true
		}
	}
	fds, _ := readNames(dir + "/fd")
	for _, fd := range fds {
		if ns.isFD(dir + "/fd/" + fd) {
			return true
		}
	}
	return false
}

// isFD reports whether the fd at path (/proc/PID/fd/N) is the namespace. An
// fd opened through a bind mount reads as that mount's path ("/run/netns/x",
// or "/" once the mount is gone) rather than "net:[ino]", so anything that
// may be a file is compared by device and inode.
func (ns nsFile) isFD(path string) bool {
	l, err := os.Readlink(path)
	if err != nil {
		return false
	}
	switch {
	case l == ns.link:
		return true
	case strings.HasPrefix(l, "socket:["), strings.HasPrefix(l, "pipe:["),
		strings.HasPrefix(l, "anon_inode:"), strings.HasPrefix(l, "net:["):
		return false
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false
	}
	return st.Dev == ns.dev && st.Ino == ns.ino
}

// readNames returns the names in dir, unsorted.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	return f.Readdirnames(-1)
}
