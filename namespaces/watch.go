package namespaces

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Watch waits for one namespace to be freed by the kernel. It gives the
// namespace a number (a netns id, as `ip netns set NAME auto` does) in the
// caller's namespace and listens for the kernel's RTM_DELNSID, which the
// kernel sends when it frees the namespace, whoever held it: a process, a
// thread, an fd, a socket made inside it, a bind mount in another mount
// namespace. Waiting costs the same whatever else runs on the machine;
// WaitGone, which scans /proc, grows with the number of processes and
// their fds, and misses holders that /proc does not show.
//
// Make a Watch while the namespace is still there (before Delete); it
// holds no reference to the namespace. Wait and Close must not be called
// concurrently.
type Watch struct {
	id   Ident
	nsid int32
	sock *os.File // NETLINK_ROUTE, in the RTNLGRP_NSID group
}

// WatchGone starts watching the namespace at path (a name in Dir or an
// nsfs path). The caller closes the Watch.
func WatchGone(path string) (*Watch, error) {
	h, err := Open(path)
	if err != nil {
		return nil, err
	}
	// The handle keeps the namespace alive until the socket listens, so
	// its id cannot be freed and handed to another namespace before then:
	// an RTM_DELNSID carrying the id is about this namespace.
	defer func() { _ = h.Close() }()
	w, err := watch(h)
	if err != nil {
		return nil, fmt.Errorf("watching namespace %s: %w", resolve(path), err)
	}
	return w, nil
}

func watch(h netns.NsHandle) (*Watch, error) {
	id, err := identOf(h)
	if err != nil {
		return nil, err
	}
	sock, err := routeSocket()
	if err != nil {
		return nil, err
	}
	w := &Watch{id: id, sock: sock}
	// The id is asked for and listened for on one socket, so both are in
	// the same (the caller's) namespace.
	if w.nsid, err = w.nsidOf(h); err == nil {
		err = w.control(func(fd uintptr) error {
			return unix.SetsockoptInt(int(fd), unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, unix.RTNLGRP_NSID)
		})
	}
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	return w, nil
}

// Wait waits until the kernel frees the namespace, or ctx ends; it may be
// called again after ctx ended. When ctx ends first the error wraps
// ctx.Err() and names the pids that still hold the namespace (those /proc
// shows). A namespace still held by a handle of the caller waits until ctx
// ends.
//
// The kernel sends RTM_DELNSID when it starts freeing the namespace; the
// links left in it are removed right after, by the kernel's cleanup work.
// If the socket lost messages (its buffer overflowed), Wait falls back to
// WaitGone.
func (w *Watch) Wait(ctx context.Context) error {
	ended := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = w.sock.SetReadDeadline(time.Unix(1, 0))
		close(ended)
	})
	defer func() {
		if !stop() {
			<-ended // so that it cannot cut short the next Wait
		}
		_ = w.sock.SetReadDeadline(time.Time{})
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := w.sock.Read(buf)
		switch {
		case ctx.Err() != nil:
			pids, _ := holdersOf(w.id)
			return fmt.Errorf("waiting for namespace net:[%d], held by pids %v: %w", w.id.Ino, pids, ctx.Err())
		case errors.Is(err, unix.ENOBUFS):
			return WaitGone(ctx, w.id)
		case err != nil:
			return fmt.Errorf("waiting for namespace net:[%d]: %w", w.id.Ino, err)
		}
		if freed(buf[:n], w.nsid) {
			return nil
		}
	}
}

// Ident is the watched namespace's identity, for WaitGone.
func (w *Watch) Ident() Ident { return w.id }

// Close stops watching. It is safe to call twice.
func (w *Watch) Close() error {
	err := w.sock.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

// freed reports whether the netlink messages in b announce that the
// namespace with id nsid was freed.
func freed(b []byte, nsid int32) bool {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_DELNSID {
			continue
		}
		if id, ok := nsidAttr(m.Data); ok && id == nsid {
			return true
		}
	}
	return false
}

// rtgenLen is the length of the rtgenmsg that starts an NSID message's
// payload (one byte, aligned to four).
const rtgenLen = 4

// nsidAttr returns the NETNSA_NSID of an NSID message's payload.
func nsidAttr(data []byte) (int32, bool) {
	if len(data) < rtgenLen {
		return 0, false
	}
	attrs, err := nl.ParseRouteAttr(data[rtgenLen:])
	if err != nil {
		return 0, false
	}
	for _, a := range attrs {
		if a.Attr.Type == unix.NETNSA_NSID && len(a.Value) >= 4 {
			return int32(nl.NativeEndian().Uint32(a.Value)), true
		}
	}
	return 0, false
}

// routeSocket returns a NETLINK_ROUTE socket in the calling thread's
// namespace, non-blocking so that reads honour deadlines.
func routeSocket() (*os.File, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("binding netlink socket: %w", err)
	}
	return os.NewFile(uintptr(fd), "netlink"), nil
}

func (w *Watch) control(fn func(fd uintptr) error) error {
	rc, err := w.sock.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(fd) }); err != nil {
		return err
	}
	return ferr
}

// nsidOf returns the id of namespace h in the socket's namespace, giving
// it one when it has none.
func (w *Watch) nsidOf(h netns.NsHandle) (int32, error) {
	id, err := w.getNSID(h)
	if err != nil || id != unix.NETNSA_NSID_NOT_ASSIGNED {
		return id, err
	}
	// -1 lets the kernel pick. EEXIST: another caller gave it one meanwhile.
	err = w.request(unix.RTM_NEWNSID, unix.NLM_F_ACK, h, nl.NewRtAttr(unix.NETNSA_NSID, nl.Uint32Attr(^uint32(0))))
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return 0, fmt.Errorf("giving the namespace an id: %w", err)
	}
	if id, err = w.getNSID(h); err == nil && id == unix.NETNSA_NSID_NOT_ASSIGNED {
		err = errors.New("the kernel gave the namespace no id")
	}
	return id, err
}

// getNSID returns the id of namespace h, NETNSA_NSID_NOT_ASSIGNED for none.
func (w *Watch) getNSID(h netns.NsHandle) (int32, error) {
	var id int32 = unix.NETNSA_NSID_NOT_ASSIGNED
	found := false
	err := w.exchange(unix.RTM_GETNSID, 0, h, nil, func(m syscall.NetlinkMessage) {
		if m.Header.Type == unix.RTM_NEWNSID {
			id, found = nsidAttr(m.Data)
		}
	})
	if err == nil && !found {
		err = errors.New("the kernel's answer carries no namespace id")
	}
	if err != nil {
		return 0, fmt.Errorf("reading the namespace's id: %w", err)
	}
	return id, nil
}

// request sends an NSID request about namespace h and waits for its ack.
func (w *Watch) request(typ, flags int, h netns.NsHandle, extra *nl.RtAttr) error {
	return w.exchange(typ, flags, h, extra, func(syscall.NetlinkMessage) {})
}

// exchange sends an NSID request about namespace h (NETNSA_FD, and extra
// when not nil) and hands each answer to fn until the kernel's answer
// ends: a reply without NLM_F_ACK, or the ack (an error message).
func (w *Watch) exchange(typ, flags int, h netns.NsHandle, extra *nl.RtAttr, fn func(syscall.NetlinkMessage)) error {
	req := nl.NewNetlinkRequest(typ, flags)
	req.AddData(nl.NewRtGenMsg())
	req.AddData(nl.NewRtAttr(unix.NETNSA_FD, nl.Uint32Attr(uint32(h))))
	if extra != nil {
		req.AddData(extra)
	}
	if err := w.sock.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	defer func() { _ = w.sock.SetDeadline(time.Time{}) }()
	if _, err := w.sock.Write(req.Serialize()); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		n, err := w.sock.Read(buf)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Seq != req.Seq {
				continue
			}
			if m.Header.Type == unix.NLMSG_ERROR {
				return ackError(m.Data)
			}
			fn(m)
			if flags&unix.NLM_F_ACK == 0 {
				return nil
			}
		}
	}
}

// ackError returns the error an NLMSG_ERROR payload carries; nil for an
// ack.
func ackError(data []byte) error {
	if len(data) < 4 {
		return errors.New("short netlink error message")
	}
	if code := int32(nl.NativeEndian().Uint32(data[:4])); code != 0 {
		return unix.Errno(-code)
	}
	return nil
}
