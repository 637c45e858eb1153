package namespaces

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netns"
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

// Ident tells one namespace from every other for as long as the machine
// runs. Ino is what ID returns; the kernel hands it to a new namespace once
// this one is gone, and a busy machine (another package's tests, another
// znetd) makes one at once. Cookie is the kernel's netns cookie
// (SO_NETNS_COOKIE, Linux 5.14), which is never reused; 0 when the kernel
// does not tell, and then only Ino is compared.
type Ident struct {
	Ino    uint64
	Cookie uint64
}

// Identify returns the Ident of the namespace at path (a name in Dir or an
// nsfs path). Take it before Delete and pass it to WaitGone.
func Identify(path string) (Ident, error) {
	h, err := Open(path)
	if err != nil {
		return Ident{}, err
	}
	defer func() { _ = h.Close() }()
	id, err := identOf(h)
	if err != nil {
		return Ident{}, fmt.Errorf("reading namespace %s: %w", resolve(path), err)
	}
	return id, nil
}

// identOf returns the Ident of the namespace h refers to. The cookie is read
// from a socket made inside it (a socket belongs to the namespace of the
// thread that makes it); a kernel without SO_NETNS_COOKIE gives 0.
func identOf(h netns.NsHandle) (Ident, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		return Ident{}, err
	}
	id := Ident{Ino: st.Ino}
	err := Do(h, func() error {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer func() { _ = unix.Close(fd) }()
		id.Cookie, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
		if errors.Is(err, unix.ENOPROTOOPT) {
			return nil // too old a kernel: Ino alone
		}
		return err
	})
	return id, err
}

// WaitGone waits until no process task (/proc/*/task/*/ns/net) and no open
// file descriptor (/proc/*/fd/*, whether it reads "net:[ID]" or is a handle
// opened through a bind mount) refers to the namespace id any more, or ctx
// ends. Used after Delete, so that deleted really means gone: the kernel
// frees the namespace and its links once nothing holds it. It polls, first
// every few milliseconds and then every 100ms. When ctx ends first the error
// wraps ctx.Err() and names the pids that still hold the namespace.
//
// A namespace found with id.Ino but another cookie is a new one that got the
// number after ours was freed: ours is gone then, whoever holds the new one.
//
// What /proc does not show is not waited for: sockets made in the namespace
// but held by a process outside it, bind mounts in other mount namespaces,
// processes of other pid namespaces, and references the kernel keeps for
// itself. A caller that holds a handle of the namespace itself waits until
// ctx ends.
func WaitGone(ctx context.Context, id Ident) error {
	delay := 2 * time.Millisecond
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		held, err := stillHeld(id)
		if err != nil {
			return fmt.Errorf("waiting for namespace net:[%d]: %w", id.Ino, err)
		}
		if !held {
			return nil
		}
		timer.Reset(delay)
		select {
		case <-ctx.Done():
			pids, _ := holdersOf(id)
			return fmt.Errorf("waiting for namespace net:[%d], held by pids %v: %w", id.Ino, pids, ctx.Err())
		case <-timer.C:
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// stillHeld reports whether some process holds the namespace id. It scans
// for the first holder of id.Ino and checks that holder's cookie: a
// namespace with the same number and another cookie means ours was freed.
// A holder that goes away before it is checked counts as held, for the
// next poll to look again.
func stillHeld(id Ident) (bool, error) {
	found, err := scan(id.Ino, true)
	if err != nil || len(found) == 0 {
		return false, err
	}
	if id.Cookie == 0 {
		return true, nil
	}
	same, err := isSame(found[0].path, id)
	return same || err != nil, nil
}

// holdersOf returns the pids that hold the namespace id, for error
// messages; holders whose namespace cannot be read any more are kept.
func holdersOf(id Ident) ([]int, error) {
	found, err := scan(id.Ino, false)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, h := range found {
		if same, err := isSame(h.path, id); same || err != nil || id.Cookie == 0 {
			pids = append(pids, h.pid)
		}
	}
	return pids, nil
}

// isSame reports whether the namespace at path (a /proc ns link or fd) is
// the namespace id.
func isSame(path string, id Ident) (bool, error) {
	h, err := openNetNS(path)
	if err != nil {
		return false, err
	}
	defer func() { _ = h.Close() }()
	got, err := identOf(h)
	if err != nil {
		return false, err
	}
	return got == id, nil
}

// Holders returns the pids of processes that are in, or hold an fd of,
// namespace id, sorted (for error messages and leak checks). The calling
// process is among them while one of its threads is in the namespace or it
// holds a handle. Processes that vanish or cannot be read during the scan
// are left out; it needs root to see every process. Once the namespace is
// gone its number may be another namespace's: those holders are left out
// by the cookie (when id has one).
func Holders(id Ident) ([]int, error) {
	found, err := scan(id.Ino, false)
	if err != nil {
		return nil, fmt.Errorf("finding holders of namespace net:[%d]: %w", id.Ino, err)
	}
	var pids []int
	for _, h := range found {
		if id.Cookie != 0 {
			if same, err := isSame(h.path, id); err != nil || !same {
				continue
			}
		}
		pids = append(pids, h.pid)
	}
	return pids, nil
}

// holder is a process that holds a namespace, and the /proc path (a task's
// ns link or an fd) through which it does.
type holder struct {
	pid  int
	path string
}

// scan returns the processes in procDir that hold namespace id, by pid,
// one path each; with first it stops at the first one found.
func scan(id uint64, first bool) ([]holder, error) {
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
	var found []holder
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue // not a process
		}
		if path := ns.heldBy(procDir + "/" + name); path != "" {
			found = append(found, holder{pid: pid, path: path})
			if first {
				break
			}
		}
	}
	slices.SortFunc(found, func(a, b holder) int { return a.pid - b.pid })
	return found, nil
}

// nsFile identifies one namespace in /proc.
type nsFile struct {
	dev, ino uint64
	link     string // as /proc/PID/ns/net reads: "net:[ino]"
}

// heldBy returns the path of a thread of the process at dir that is in the
// namespace, or of an fd of it the process has open; "" for none.
func (ns nsFile) heldBy(dir string) string {
	tasks, _ := readNames(dir + "/task")
	for _, tid := range tasks {
		path := dir + "/task/" + tid + "/ns/net"
		if l, _ := os.Readlink(path); l == ns.link {
			return path
		}
	}
	fds, _ := readNames(dir + "/fd")
	for _, fd := range fds {
		if path := dir + "/fd/" + fd; ns.isFD(path) {
			return path
		}
	}
	return ""
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
