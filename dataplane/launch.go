package dataplane

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/vishvananda/netns"

	"github.com/znet/znet/namespaces"
)

// Launch is one data-plane process (a data plane or a resolver) ready to
// start: both kinds run the same way, so that they outlive znetd and hold
// nothing of it. Close it once started (or given up).
type Launch struct {
	// Cmd runs the program: environment added, in "/" (pinning no
	// directory of the daemon), output appended to its log, the underlay
	// handle as fd 3, in a session of its own (a signal to znetd's
	// process group does not reach it).
	Cmd   *exec.Cmd
	ns    netns.NsHandle
	files []*os.File // the log and the underlay handle the child inherits
}

// NewLaunch prepares exe with args to run in the namespace at netnsPath,
// its output appended to the file at logPath, env added to the
// environment and a duplicate of underlay as fd 3.
func NewLaunch(exe string, args, env []string, logPath, netnsPath string, underlay netns.NsHandle) (*Launch, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening log %s: %w", logPath, err)
	}
	l := &Launch{ns: netns.None(), files: []*os.File{logf}}
	if l.ns, err = namespaces.Open(netnsPath); err != nil {
		l.Close()
		return nil, err
	}
	ufd, err := DupFd(int(underlay))
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("duplicating underlay handle: %w", err)
	}
	ul := os.NewFile(uintptr(ufd), "underlay-netns")
	l.files = append(l.files, ul)

	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{ul} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	l.Cmd = cmd
	return l, nil
}

// Start forks the process inside its namespace, without privileges it
// does not need (Restrict).
func (l *Launch) Start() error { return namespaces.StartRestricted(l.Cmd, l.ns, Restrict) }

// Close releases what the parent held for the child: the namespace
// handle, the log and the underlay handle. The process keeps its own.
func (l *Launch) Close() {
	if l.ns.IsOpen() {
		_ = l.ns.Close()
	}
	for _, f := range l.files {
		_ = f.Close()
	}
}
