package tap

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/namespaces"
)

// MaxQueues bounds the queues of one tap: the kernel allows 256, a VM uses
// one per vCPU.
const MaxQueues = 64

// Flags returns the TUNSETIFF flags of a tap with queues queues: no packet
// information header, a virtio-net header (what qemu, cloud-hypervisor and
// firecracker expect for offloads) and, above one queue, multi-queue.
// Create and Open must use the same flags: the kernel refuses to attach a
// queue whose multi-queue flag differs from the device's.
func Flags(queues int) uint16 {
	f := uint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if queues > 1 {
		f |= unix.IFF_MULTI_QUEUE
	}
	return f
}

// checkQueues refuses a queue count the kernel would refuse later.
func checkQueues(queues int) error {
	if queues < 1 || queues > MaxQueues {
		return fmt.Errorf("tap queues %d: must be 1-%d", queues, MaxQueues)
	}
	return nil
}

// Create makes the persistent tap name with queues queues in the namespace
// ns; no file descriptor stays open, so the device waits, down, for a
// monitor to attach. The caller sets its MTU, MAC, master and state.
func Create(ns netns.NsHandle, name string, queues int) error {
	if err := checkQueues(queues); err != nil {
		return err
	}
	t := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: name},
		Mode:      netlink.TUNTAP_MODE_TAP,
		Flags:     netlink.TuntapFlag(Flags(queues)) &^ netlink.TuntapFlag(unix.IFF_TAP),
		Queues:    queues,
	}
	// A tap belongs to the namespace of the thread that opens
	// /dev/net/tun, so the whole creation runs inside ns.
	err := namespaces.Do(ns, func() error { return netlink.LinkAdd(t) })
	for _, f := range t.Fds {
		_ = f.Close()
	}
	if err != nil {
		return fmt.Errorf("creating tap %s: %w", name, err)
	}
	return nil
}

// ErrNoTap is returned (wrapped) by Open when there is no tap by that name
// in the namespace.
var ErrNoTap = errors.New("no such tap")

// Open attaches to the queues of the existing tap name in the namespace ns
// and returns one file per queue, in blocking mode and close-on-exec (a
// caller handing them to a child passes them explicitly). A single-queue
// tap takes one opener at a time: a second gets EBUSY.
func Open(ns netns.NsHandle, name string, queues int) ([]*os.File, error) {
	if err := checkQueues(queues); err != nil {
		return nil, err
	}
	var files []*os.File
	err := namespaces.Do(ns, func() error {
		// TUNSETIFF makes a new device when there is none by that name:
		// a monitor would run on a tap that is on no bridge.
		if l, err := netlink.LinkByName(name); err != nil {
			return fmt.Errorf("%w: %v", ErrNoTap, err)
		} else if t, ok := l.(*netlink.Tuntap); !ok || t.Mode != netlink.TUNTAP_MODE_TAP {
			return fmt.Errorf("%w: %s is a %s", ErrNoTap, name, l.Type())
		}
		for range queues {
			f, err := openQueue(name, Flags(queues))
			if err != nil {
				return err
			}
			files = append(files, f)
		}
		return nil
	})
	if err != nil {
		for _, f := range files {
			_ = f.Close()
		}
		return nil, fmt.Errorf("opening tap %s: %w", name, err)
	}
	return files, nil
}

// openQueue opens /dev/net/tun and attaches it to the tap name; the
// calling thread must be in the tap's namespace.
func openQueue(name string, flags uint16) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(flags)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("attaching to %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "tap:"+name), nil
}
