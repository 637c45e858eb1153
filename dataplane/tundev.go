package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// createTUN creates the TUN ifname with mtu as tun.CreateTUN does (the
// same flags, so the same offloads), but without the library's "hack
// listener": a goroutine that writes nothing to the TUN every second to
// learn whether it is up when it sits in another namespace than the
// process's netlink socket. A data plane's TUN never leaves the namespace
// the data plane runs in, so link notifications alone tell it (watchLink);
// the listener only woke every data plane once a second for as long as it
// lived: ~1,000 wake-ups a second on a node of 1,000 idle networks, and
// nearly all of an idle data plane's CPU time (2 ticks in 2 minutes,
// measured, with 20 TUN writes in 20 s and nothing else in between).
func createTUN(ifname string, mtu int) (tun.Device, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", ifname, err)
	}
	// Before the link can go up: znetd sets it up once the data plane
	// answers on its UAPI socket, which is later.
	w, err := watchLink(ifname)
	if err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		w.close()
		_ = unix.Close(fd)
		return nil, err
	}
	// Owns fd from here, even when it fails: it wraps fd in an os.File
	// first (after the SetNonblock above, which cannot fail now), whose
	// finalizer closes it; closing it here too could close a later file
	// that got the same number.
	dev, _, err := tun.CreateUnmonitoredTUNFromFD(fd)
	if err != nil {
		w.close()
		return nil, err
	}
	t := &watchedTUN{Device: dev, watch: w}
	if err := w.h.LinkSetMTU(w.link, mtu); err != nil {
		_ = t.Close()
		return nil, fmt.Errorf("setting MTU %d on %s: %w", mtu, ifname, err)
	}
	// A link that is up already sends no news of it: read its state once.
	// A new TUN is down, but TUNSETIFF attaches to a persistent one of
	// that name if someone made it.
	if err := w.sendState(); err != nil {
		_ = t.Close()
		return nil, err
	}
	return t, nil
}

// watchedTUN is a TUN whose events come from watchLink.
type watchedTUN struct {
	tun.Device
	watch *linkWatch
}

// Events returns the link's changes as wireguard-go reads them.
func (t *watchedTUN) Events() <-chan tun.Event { return t.watch.events }

// Close stops the watch and closes the TUN.
func (t *watchedTUN) Close() error {
	t.watch.close()
	return t.Device.Close()
}

// linkWatch turns the kernel's link notifications about one link into
// wireguard-go's TUN events: up when the link is running and an MTU check
// at every change, as the library's netlink listener does, but never
// down. The device's Down closes its UDP sockets and its Up opens them
// again, in the underlay, which a data plane that dropped its privileges
// cannot enter (privileges.go): a link taken down and up by hand would
// leave the device without sockets. Up, a device whose link is down only
// gets no packets from the kernel. (The library's TUN did not say down in
// practice either: its netlink listener only when the link went up and
// down within one read, and with its status poll a link kept down for
// 1.5 s kept its sockets, TestDataplanePrivileges.) It waits in the
// runtime's poller, so an idle link costs no wake-up at all.
type linkWatch struct {
	f        *os.File
	h        *netlink.Handle // in the namespace watched
	link     netlink.Link
	events   chan tun.Event
	done     chan struct{}
	watching chan struct{} // closed when run returns
}

// watchLink subscribes to the link notifications of the namespace the
// calling thread is in and starts sending those of link ifname there.
func watchLink(ifname string) (*linkWatch, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	link, err := h.LinkByName(ifname)
	if err != nil {
		h.Close()
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK}); err != nil {
		h.Close()
		_ = unix.Close(fd)
		return nil, fmt.Errorf("subscribing to link changes: %w", err)
	}
	w := &linkWatch{
		f: os.NewFile(uintptr(fd), "netlink"), // non-blocking: the poller's
		h: h, link: link,
		events: make(chan tun.Event, 5), done: make(chan struct{}), watching: make(chan struct{}),
	}
	go w.run()
	return w, nil
}

// watchBufSize holds one link message with every attribute (a few KiB).
const watchBufSize = 16 << 10

// run reads notifications until close.
func (w *linkWatch) run() {
	defer close(w.watching)
	defer close(w.events)
	rc, err := w.f.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, watchBufSize)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
				if !errors.Is(rerr, unix.EINTR) {
					return !errors.Is(rerr, unix.EAGAIN)
				}
			}
		})
		switch {
		case err != nil: // closed
			return
		case errors.Is(rerr, unix.ENOBUFS):
			// Notifications were lost: ask for the state instead.
			if w.sendState() != nil {
				return
			}
		case rerr != nil:
			return
		default:
			if !w.handle(buf[:n]) {
				return
			}
		}
	}
}

// handle sends the events of the notifications in b about the watched
// link, and reports false once the watch is closed.
func (w *linkWatch) handle(b []byte) bool {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return true
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		// struct ifinfomsg: family, pad, type (2), index (4), flags (4).
		index := int(int32(binary.NativeEndian.Uint32(m.Data[4:8])))
		flags := binary.NativeEndian.Uint32(m.Data[8:12])
		if index == w.link.Attrs().Index && !w.send(flags&unix.IFF_RUNNING != 0) {
			return false
		}
	}
	return true
}

// sendState reads the link's flags and sends them as a notification
// would; an error only when the link cannot be read.
func (w *linkWatch) sendState() error {
	link, err := w.h.LinkByIndex(w.link.Attrs().Index)
	if err != nil {
		return fmt.Errorf("reading link %s: %w", w.link.Attrs().Name, err)
	}
	w.send(link.Attrs().RawFlags&unix.IFF_RUNNING != 0)
	return nil
}

// send sends the events of a link that is running or not (see
// linkWatch: never down), and reports false once the watch is closed.
func (w *linkWatch) send(running bool) bool {
	ev := tun.Event(tun.EventMTUUpdate)
	if running {
		ev |= tun.EventUp
	}
	select {
	case w.events <- ev:
		return true
	case <-w.done:
		return false
	}
}

// close stops the watch and waits for it.
func (w *linkWatch) close() {
	select {
	case <-w.done:
		return
	default:
	}
	close(w.done)
	_ = w.f.Close() // wakes run's Read
	<-w.watching
	w.h.Close()
}
