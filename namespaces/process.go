package namespaces

import (
	"fmt"
	"os/exec"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Start starts cmd with every thread of the new process in ns. The process is
// forked from a thread switched into ns, so it is there before its first
// instruction; nothing else of the caller changes namespace. The caller waits
// for cmd as usual.
func Start(cmd *exec.Cmd, ns netns.NsHandle) error {
	if err := Do(ns, cmd.Start); err != nil {
		return fmt.Errorf("starting %s in namespace: %w", cmd.Path, err)
	}
	return nil
}

// StartRestricted is Start, but the thread that forks cmd first runs
// restrict, for per-thread attributes that the child inherits and that no
// other goroutine may ever run with (no_new_privs, a cut capability
// bounding set: neither can be undone). That thread is never unlocked, so
// the runtime retires it when the fork is done; the process's main thread,
// which the runtime can never retire, is never used for it.
func StartRestricted(cmd *exec.Cmd, ns netns.NsHandle, restrict func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			errc <- startOnThread(cmd, ns, restrict) // never unlocked: see above
			return
		}
		// The main thread: while this goroutine holds it, the new
		// goroutine of the call below runs on another one.
		defer runtime.UnlockOSThread()
		errc <- StartRestricted(cmd, ns, restrict)
	}()
	return <-errc
}

// startOnThread runs restrict on the current (locked, doomed) thread,
// switches it into ns and forks cmd from it; then it switches the thread
// back, so that no thread of the caller stays in ns even for a moment.
func startOnThread(cmd *exec.Cmd, ns netns.NsHandle, restrict func() error) error {
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("getting current namespace: %w", err)
	}
	defer func() { _ = orig.Close() }()
	if err := restrict(); err != nil {
		return fmt.Errorf("restricting the thread: %w", err)
	}
	if err := netns.Set(ns); err != nil {
		return fmt.Errorf("entering namespace: %w", err)
	}
	if err := cmd.Start(); err != nil {
		_ = netns.Set(orig)
		return fmt.Errorf("starting %s in namespace: %w", cmd.Path, err)
	}
	_ = netns.Set(orig) // best effort: the thread ends anyway
	return nil
}
