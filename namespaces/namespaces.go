package namespaces

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dir is where named network namespaces are bind-mounted, as with iproute2.
const Dir = "/run/netns"

// ErrNotNetNS is returned by Open, DoPath and ID when a path exists but is not
// a network namespace (a regular file, a directory, another namespace type).
var ErrNotNetNS = errors.New("not a network namespace")

// Name returns the name of the namespace that node nodeID makes for network.
func Name(nodeID, network string) string { return NodePrefix(nodeID) + network }

// NodePrefix returns the prefix shared by every namespace node nodeID makes.
// The node id ends with a dot, which no DNS label contains, so the prefix of
// node "a" never matches the namespaces of node "a-b".
func NodePrefix(nodeID string) string { return "zn-" + nodeID + "." }

// Path returns the bind-mount path of the named namespace name.
func Path(name string) string { return filepath.Join(Dir, name) }

// Exists reports whether the named namespace name exists.
func Exists(name string) bool {
	if validName(name) != nil {
		return false
	}
	return IsNetNS(Path(name))
}

// IsNetNS reports whether path refers to a live network namespace (an nsfs
// file of type net, as a bind mount in /run/netns or /proc/PID/ns/net).
func IsNetNS(path string) bool {
	h, err := openNetNS(path)
	if err != nil {
		return false
	}
	_ = h.Close()
	return true
}

// resolve turns a bare name into its path in Dir and leaves paths alone.
func resolve(path string) string {
	if !strings.ContainsRune(path, '/') {
		return Path(path)
	}
	return path
}

// Open returns a handle to the network namespace at path (a name in Dir or
// any nsfs path). The caller closes it. A path that exists but is not a
// network namespace gives ErrNotNetNS.
func Open(path string) (netns.NsHandle, error) {
	path = resolve(path)
	h, err := openNetNS(path)
	if err != nil {
		return netns.None(), fmt.Errorf("opening namespace %s: %w", path, err)
	}
	return h, nil
}

// openNetNS opens path and checks, on the open file, that it is a network
// namespace.
func openNetNS(path string) (netns.NsHandle, error) {
	// A cheap look before opening, so that a FIFO or a device is never opened.
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return netns.None(), err
	}
	if st.Type != unix.NSFS_MAGIC {
		return netns.None(), ErrNotNetNS
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return netns.None(), err
	}
	// Check again on the fd: the path may have changed since Statfs.
	if err := checkNetNS(fd); err != nil {
		_ = unix.Close(fd)
		return netns.None(), err
	}
	return netns.NsHandle(fd), nil
}

// checkNetNS returns nil if fd is a network namespace and ErrNotNetNS if it
// is not.
func checkNetNS(fd int) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return err
	}
	if st.Type != unix.NSFS_MAGIC {
		return ErrNotNetNS
	}
	// nsfs holds every namespace type; only net will do for setns(CLONE_NEWNET).
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if errors.Is(err, unix.ENOTTY) {
		return nil // kernel before 4.11: nsfs is the best we can tell
	}
	if err != nil {
		return err
	}
	if typ != unix.CLONE_NEWNET {
		return ErrNotNetNS
	}
	return nil
}

// DoPath is Do for the namespace at path (a name in Dir or an nsfs path).
func DoPath(path string, fn func() error) error {
	h, err := Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = h.Close() }()
	return Do(h, fn)
}

// nameMu serialises Create and Delete in this process, so that two calls for
// one name never stack two bind mounts on one path.
var nameMu sync.Mutex

// prepareDirLocked makes Dir a shared bind mount of itself, as iproute2 does, so
// namespaces created later are seen from mount namespaces made before (such
// as those of `ip netns exec`). The caller holds nameMu.
func prepareDirLocked() error {
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("sharing %s: %w", Dir, err)
	}
	// EINVAL: Dir is not a mount point yet. Bind it onto itself first.
	if err := unix.Mount(Dir, Dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding %s: %w", Dir, err)
	}
	if err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("sharing %s: %w", Dir, err)
	}
	return nil
}

// Create makes the named network namespace name if it does not exist yet.
// It is idempotent: an existing namespace is left as it is, and a leftover
// empty file of an interrupted Create is reused. An invalid name gives an
// error wrapping os.ErrInvalid.
func Create(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	nameMu.Lock()
	defer nameMu.Unlock()
	if Exists(name) {
		return nil
	}
	if err := prepareDirLocked(); err != nil {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	path := Path(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if f != nil {
		_ = f.Close()
	}
	err = onFreshThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unsharing: %w", err)
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding to %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// Delete removes the named namespace name. The namespace itself lives on
// while a process or an open handle still holds it; WaitGone waits for that.
// Deleting a namespace that does not exist is not an error. An invalid name
// gives an error wrapping os.ErrInvalid.
func Delete(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	nameMu.Lock()
	defer nameMu.Unlock()
	path := Path(name)
	// Unmount until nothing is left: a racing `ip netns add` elsewhere may
	// have stacked a second bind mount on the path.
	for range 16 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break
		}
		if err != nil {
			return fmt.Errorf("unmounting %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}

// List returns the names in Dir that start with prefix, sorted. It lists
// what is in Dir, so a leftover file of an interrupted Create is listed too
// (Delete removes it).
func List(prefix string) ([]string, error) {
	entries, err := os.ReadDir(Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", Dir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Lookup returns the name in Dir that starts with prefix and names the
// namespace with inode ino, "" when none does. It only stats each name:
// the caller holds a handle of namespace ino, so no other namespace can
// have that number meanwhile and no cookie is needed.
func Lookup(prefix string, ino uint64) (string, error) {
	names, err := List(prefix)
	if err != nil {
		return "", err
	}
	// Every namespace lives on the one nsfs; its device tells a namespace
	// from a leftover file of an interrupted Create with the same number.
	var nsfs unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &nsfs); err != nil {
		return "", fmt.Errorf("reading own namespace: %w", err)
	}
	for _, name := range names {
		var st unix.Stat_t
		if unix.Stat(Path(name), &st) == nil && st.Dev == nsfs.Dev && st.Ino == ino {
			return name, nil
		}
	}
	return "", nil
}

// validName accepts the names iproute2 accepts: not empty, not . or .., no
// slash, shorter than NAME_MAX; and no NUL byte.
func validName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) >= 255 ||
		strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("namespace name %q: %w", name, os.ErrInvalid)
	}
	return nil
}
