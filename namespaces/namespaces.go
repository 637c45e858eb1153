package namespaces

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dir is where named network namespaces are bind-mounted, as with iproute2.
const Dir = "/run/netns"

// ErrNotNetNS is returned by Open and Do when a path exists but is not a
// network namespace.
var ErrNotNetNS = errors.New("not a network namespace")

// Name returns the name of the namespace that node nodeID makes for network.
func Name(nodeID, network string) string { return NodePrefix(nodeID) + network }

// NodePrefix returns the prefix shared by every namespace node nodeID makes.
func NodePrefix(nodeID string) string { return "zn-" + nodeID + "-" }

// Path returns the bind-mount path of the named namespace name.
func Path(name string) string { return filepath.Join(Dir, name) }

// Exists reports whether the named namespace name exists.
func Exists(name string) bool { return IsNetNS(Path(name)) }

// IsNetNS reports whether path refers to a live network namespace (an nsfs
// file, as a bind mount in /run/netns or /proc/PID/ns/net).
func IsNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// Open returns a handle to the network namespace at path (a name in Dir or
// any nsfs path). The caller closes it.
func Open(path string) (netns.NsHandle, error) {
	if !strings.ContainsRune(path, '/') {
		path = Path(path)
	}
	if !IsNetNS(path) {
		if _, err := os.Stat(path); err != nil {
			return netns.None(), fmt.Errorf("opening namespace %s: %w", path, err)
		}
		return netns.None(), fmt.Errorf("opening namespace %s: %w", path, ErrNotNetNS)
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		return netns.None(), fmt.Errorf("opening namespace %s: %w", path, err)
	}
	return h, nil
}

// Do runs fn on a locked OS thread that is switched into ns, then switches
// the thread back. If the thread cannot be switched back it stays locked and
// the runtime retires it when the goroutine ends.
//
// fn must not start goroutines that need to run in ns: they run on other
// threads, in whatever namespace those threads are in.
func Do(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	// A fresh goroutine keeps the caller's own lock state untouched.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("getting current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime terminates it when this
			// goroutine exits, so no other goroutine ever runs in ns by accident.
			errc <- errors.Join(ferr, fmt.Errorf("restoring namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// DoPath is Do for the namespace at path (a name in Dir or an nsfs path).
func DoPath(path string, fn func() error) error {
	h, err := Open(path)
	if err != nil {
		return err
	}
	defer h.Close()
	return Do(h, fn)
}

// mountMu serialises the one-time setup of Dir as a shared mount point.
var mountMu sync.Mutex

// prepareDir makes Dir a shared bind mount of itself, as iproute2 does, so
// namespaces created later are seen from mount namespaces made before (such
// as those of `ip netns exec`).
func prepareDir() error {
	mountMu.Lock()
	defer mountMu.Unlock()
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
// It is idempotent: an existing namespace is left as it is.
func Create(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	if Exists(name) {
		return nil
	}
	if err := prepareDir(); err != nil {
		return err
	}
	path := Path(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if f != nil {
		f.Close()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("unsharing: %w", err)
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		merr := unix.Mount(self, path, "none", unix.MS_BIND, "")
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(merr, fmt.Errorf("restoring namespace: %w", err))
			return // thread stays locked and is retired
		}
		runtime.UnlockOSThread()
		errc <- merr
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// Delete removes the named namespace name. The namespace itself lives on
// while a process or an open handle still holds it; WaitGone waits for that.
// Deleting a namespace that does not exist is not an error.
func Delete(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	path := Path(name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}

// List returns the names in Dir that start with prefix, sorted.
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

func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("namespace name %q: %w", name, os.ErrInvalid)
	}
	return nil
}
