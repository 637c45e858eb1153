package dataplane

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// A data plane parses packets and DNS from anyone on its network, so it
// runs with as little as it can. znetd forks it from a thread that set
// no_new_privs and cut the capability bounding set to startCaps (both are
// inherited by every thread of the child, whatever the child's runtime
// does). Once its device has bound its UDP port in the underlay, the data
// plane closes the underlay handle and becomes its own user (UID): every thread
// loses every capability. What the running device needs after that is
// already open (TUN, UDP sockets, UAPI and resolver control sockets) or
// needs no privilege (the resolver's port 53: the data plane lowers its
// namespace's ip_unprivileged_port_start to 53 before dropping; nothing
// else runs in that namespace). Re-opening the UDP sockets (a new listen
// port or fwmark set through UAPI; taking the link down and up does not
// re-open them) needs to enter the underlay again, which it can no longer
// do: the data plane then exits. znetd never asks it to: to move a port it
// starts a new data plane that binds the new port at start.

// UID returns the user (and group) id the data plane of the device
// ifname runs as once it has dropped its privileges: one of its own per
// network, so that a data plane taken over through a parser bug cannot
// signal (kill) the data planes of other networks, as it could if they all
// were nobody. The id is derived from the interface name, itself unique on
// the machine, into 0x70000000-0x7ffdffff: above the ranges systemd hands
// to users, dynamic service users and nspawn containers, below its
// "foreign" range (0x7ffe0000) and below 2^31, which some tools mishandle.
// Two networks share an id with a chance of about n^2/2^29 for n networks
// on a machine (0.2 % at 1,000); they are then as separated as before. No
// passwd entry is needed: the data plane owns no file after the drop.
func UID(ifname string) int {
	sum := sha256.Sum256([]byte("znet-dataplane-uid/" + ifname))
	const base, span = 0x70000000, 0x7ffe0000 - 0x70000000
	return base + int(binary.BigEndian.Uint32(sum[:4])%span)
}

// startCaps are the capabilities a data plane may hold while it starts:
// NET_ADMIN for the TUN device, the link and the sysctl, SYS_ADMIN to
// enter the underlay to bind its UDP sockets, NET_BIND_SERVICE for a
// listen port below 1024, SETUID and SETGID to become its user, SETPCAP
// to empty its bounding set.
var startCaps = []uintptr{
	unix.CAP_NET_ADMIN, unix.CAP_SYS_ADMIN, unix.CAP_NET_BIND_SERVICE,
	unix.CAP_SETUID, unix.CAP_SETGID, unix.CAP_SETPCAP,
}

// Restrict runs on the locked thread that forks a data plane
// (and dies with it): it sets no_new_privs and drops every capability but
// startCaps from the thread's bounding set, so the data plane can never
// gain more. Both are per-thread attributes that a forked child inherits.
func Restrict() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	keep := map[uintptr]bool{}
	for _, c := range startCaps {
		keep[c] = true
	}
	for c := uintptr(0); c <= lastCap(); c++ {
		if keep[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	return nil
}

// lastCap returns the highest capability number this kernel knows.
func lastCap() uintptr {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return unix.CAP_LAST_CAP
	}
	var n uintptr
	if _, err := fmt.Sscan(string(b), &n); err != nil {
		return unix.CAP_LAST_CAP
	}
	return n
}

// allowLowPorts lets processes of this (the network's) namespace bind
// ports from 53 without a capability, for the resolver that starts after
// the drop. Only the data plane runs in the network's namespace.
func allowLowPorts() error {
	const path = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
	if err := os.WriteFile(path, []byte("53"), 0o644); err != nil {
		return fmt.Errorf("allowing port 53: %w", err)
	}
	return nil
}

// dropPrivileges turns every thread of the process into user uid with
// no capabilities. The bounding set is emptied first where the runtime can
// do it on every thread (a program without cgo); with cgo it stays at
// startCaps, which no_new_privs and a non-root user make unusable. The
// uid and gid changes reach every thread in both cases (Go's syscall
// package, or libc, applies them to all threads).
func dropPrivileges(uid int) error {
	if err := emptyBoundingSet(); err != nil {
		return err
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("dropping groups: %w", err)
	}
	if err := syscall.Setresgid(uid, uid, uid); err != nil {
		return fmt.Errorf("setting gid: %w", err)
	}
	// Without PR_SET_KEEPCAPS, leaving uid 0 clears the permitted,
	// effective and ambient capabilities of each thread.
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("setting uid: %w", err)
	}
	return nil
}

// emptyBoundingSet drops every capability from the bounding set of every
// thread, when the runtime can run a system call on all threads.
func emptyBoundingSet() error {
	for c := uintptr(0); c <= lastCap(); c++ {
		_, _, errno := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, c, 0)
		switch {
		case errno == syscall.ENOTSUP:
			return nil // cgo: see dropPrivileges
		case errno == syscall.EINVAL:
			return nil // past this kernel's last capability
		case errno != 0:
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, errno)
		}
	}
	return nil
}

// errRebind is returned by underlayBind.Open once the data plane dropped
// its privileges: opening sockets in the underlay needs them.
var errRebind = errors.New("the data plane dropped the privileges to open sockets in the underlay; it exits so that znetd starts a new one")
