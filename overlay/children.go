package overlay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/dataplane"
	"github.com/znet/znet/namespaces"
)

// This file holds how the userspace backend finds, stops, waits for and
// reaps data-plane processes.

// terminate sends SIGTERM to the data plane pid of d, waits up to
// b.termGrace (or ctx) for it to exit, then kills it and waits up to
// killWait. The process is held by a pidfd opened before its identity is
// checked, so a reused pid is never signalled.
func (b *Userspace) terminate(ctx context.Context, pid int, d Device) error {
	ifname := d.IfName
	fd, err := b.openDataplane(pid, ifname)
	if err != nil || fd < 0 {
		return err
	}
	defer func() { _ = unix.Close(fd) }()
	if err := unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("stopping data plane %d: %w", pid, err)
	}
	tctx, cancel := context.WithTimeout(ctx, b.termGrace)
	defer cancel()
	if b.waitExit(tctx, fd, pid) {
		return nil
	}
	b.log.Warn("killing data plane", "network", d.Network, "ifname", ifname, "pid", pid)
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("killing data plane %d: %w", pid, err)
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
	defer cancel()
	if b.waitExit(kctx, fd, pid) {
		return nil
	}
	return fmt.Errorf("data plane %d of %s did not exit", pid, ifname)
}

// openDataplane returns a pidfd of pid if it is a live data plane of
// ifname, or -1 if it is not (any more).
func (b *Userspace) openDataplane(pid int, ifname string) (int, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("opening process %d: %w", pid, err)
	}
	// Checked after opening: the fd now pins this very process.
	if !b.ours(pid, ifname) {
		_ = unix.Close(fd)
		return -1, nil
	}
	return fd, nil
}

// ours reports whether pid is a data plane of ifname: our own child that
// was not reaped yet (even while it exits and its command line is gone), or
// a live process whose command line says so.
func (b *Userspace) ours(pid int, ifname string) bool {
	b.mu.Lock()
	b.reapLocked(pid)
	c, ok := b.children[pid]
	b.mu.Unlock()
	if ok && c.ifname == ifname {
		return true
	}
	return dataplane.IsDataplane(pid, ifname)
}

// find returns the pid of the data plane of ifname: the one in the pid
// file, else our own child for ifname, else one that ran when the backend
// was made (found in /proc then); 0 if none runs. /proc is read once, not
// here: every apply of a new network asks, and with a thousand data planes
// a scan of /proc per apply grew with the count.
func (b *Userspace) find(ifname string) int {
	if pid, err := dataplane.ReadPidFile(b.pidFile(ifname)); err == nil && b.ours(pid, ifname) {
		return pid
	}
	b.mu.Lock()
	for pid, c := range b.children {
		if c.ifname == ifname {
			b.mu.Unlock()
			if b.ours(pid, ifname) {
				return pid
			}
			b.mu.Lock()
		}
	}
	pid := b.atStart[ifname]
	b.mu.Unlock()
	if pid != 0 && dataplane.IsDataplane(pid, ifname) {
		return pid
	}
	return 0
}

// waitLinkGone waits until no link named d.IfName is left in d's
// namespace: the TUN device of a data plane that just died goes away only
// while it exits, and a new one cannot take the name before.
func waitLinkGone(ctx context.Context, d Device) error {
	ns, err := namespaces.Open(d.NetNS)
	if err != nil {
		return err
	}
	defer func() { _ = ns.Close() }()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", d.NetNS, err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(ctx, killWait)
	defer cancel()
	for {
		_, err := h.LinkByName(d.IfName)
		if isLinkNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("looking for %s: %w", d.IfName, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("a link %s without data plane is in %s: %w", d.IfName, d.NetNS, os.ErrExist)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitGone waits until pid, if it is a data plane of ifname, has exited
// (and is reaped if it is our child), and reports whether that happened
// before ctx ended.
func (b *Userspace) waitGone(ctx context.Context, pid int, ifname string) bool {
	fd, err := b.openDataplane(pid, ifname)
	if err != nil || fd < 0 {
		return err == nil
	}
	defer func() { _ = unix.Close(fd) }()
	return b.waitExit(ctx, fd, pid)
}

// waitExit polls pidfd fd of pid until the process has exited, reaps it if
// it is our child, and reports whether that happened before ctx ended.
func (b *Userspace) waitExit(ctx context.Context, fd, pid int) bool {
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 20)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false
		}
		if n > 0 {
			b.reap(pid)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
	}
}

// reap collects the exit status of pid if it is our child and has exited.
func (b *Userspace) reap(pid int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reapLocked(pid)
}

func (b *Userspace) reapLocked(pid int) {
	c, ok := b.children[pid]
	if !ok {
		return
	}
	var ws unix.WaitStatus
	got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	if got == 0 && err == nil {
		return // still running
	}
	delete(b.children, pid)
	b.exits[c.ifname] = exit{pid: pid, reason: dataplane.ExitReason(ws, err)}
	close(c.exited)
	switch {
	case err != nil:
	case ws.Signaled():
		b.log.Info("data plane exited", "network", c.network, "ifname", c.ifname, "pid", pid, "signal", ws.Signal().String())
	default:
		b.log.Info("data plane exited", "network", c.network, "ifname", c.ifname, "pid", pid, "status", ws.ExitStatus())
	}
}

// exit is how a reaped data plane ended.
type exit struct {
	pid    int
	reason string
}

// unknownExit is the reason given for a data plane that was not our
// child: only a parent learns how a process ended.
const unknownExit = "exited (how is unknown: it was started by an earlier znetd)"

// Wait implements Backend. It holds the process by a pidfd registered with
// Go's poller, so a thousand waiting networks cost no thread and no
// polling.
func (b *Userspace) Wait(ctx context.Context, d Device, pid int) (string, error) {
	if err := checkIfName(d.IfName); err != nil {
		return "", err
	}
	fd, err := b.openDataplane(pid, d.IfName)
	if err != nil {
		return "", err
	}
	if fd >= 0 {
		if err := dataplane.WaitPidfd(ctx, fd); err != nil {
			return "", err
		}
		b.reap(pid)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.exits[d.IfName]; ok && e.pid == pid {
		return e.reason, nil
	}
	return unknownExit, nil
}

// reaper collects children that exit on their own until Close.
func (b *Userspace) reaper() {
	defer close(b.done)
	t := time.NewTicker(reapInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.mu.Lock()
			for pid := range b.children {
				b.reapLocked(pid)
			}
			b.mu.Unlock()
		}
	}
}
