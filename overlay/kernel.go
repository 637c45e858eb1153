package overlay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/namespaces"
)

// Kernel is the kernel backend: a link of type wireguard created in the
// underlay (so its UDP socket stays there) and moved into the device's
// namespace. It runs no processes.
type Kernel struct {
	log       *slog.Logger
	underlay  netns.NsHandle // owned
	devices   keyedMutex
	closeOnce sync.Once
	closeErr  error
}

var _ Backend = (*Kernel)(nil)

// newKernel returns a kernel backend; it does not probe.
func newKernel(opts Options) (*Kernel, error) {
	underlay, err := underlayHandle(opts.Underlay)
	if err != nil {
		return nil, err
	}
	return &Kernel{log: logger(opts.Logger).With("backend", "kernel"), underlay: underlay}, nil
}

// ProbeKernel tries to create a WireGuard link in a throwaway namespace of
// its own and returns nil if the kernel can, an error wrapping
// ErrKernelUnsupported if it has no WireGuard, or another error if the
// probe itself failed.
func ProbeKernel() error {
	ns, err := throwawayNetNS()
	if err != nil {
		return fmt.Errorf("probing kernel WireGuard: %w", err)
	}
	defer func() { _ = ns.Close() }() // the namespace and the link vanish with the last handle
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("probing kernel WireGuard: %w", err)
	}
	defer h.Close()
	err = h.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: "znprobe0"}})
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) ||
		strings.Contains(err.Error(), "Unknown device type") {
		return fmt.Errorf("%w: %w", ErrKernelUnsupported, err)
	}
	return fmt.Errorf("probing kernel WireGuard: %w", err)
}

// throwawayNetNS returns a handle to a new, unnamed network namespace that
// disappears when the handle is closed.
func throwawayNetNS() (netns.NsHandle, error) {
	cur, err := netns.Get()
	if err != nil {
		return netns.None(), err
	}
	defer func() { _ = cur.Close() }()
	ns := netns.None()
	err = namespaces.Do(cur, func() error {
		// Moves only this locked thread; Do moves it back afterwards.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unsharing: %w", err)
		}
		var err error
		ns, err = netns.Get()
		return err
	})
	if err != nil {
		if ns.IsOpen() {
			_ = ns.Close()
		}
		return netns.None(), err
	}
	return ns, nil
}

// Kind returns "kernel".
func (b *Kernel) Kind() string { return "kernel" }

// Close releases the underlay handle; devices stay. Safe to call twice.
func (b *Kernel) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.underlay.Close() })
	return b.closeErr
}

// PID returns 0: kernel devices have no process.
func (b *Kernel) PID(Device) int { return 0 }

// Wait returns ErrNoProcess: the kernel's device has no process to die.
func (b *Kernel) Wait(context.Context, Device, int) (string, error) { return "", ErrNoProcess }

// SendDrops implements Backend: kernel WireGuard fragments an outer packet
// that is too big for the underlay instead of dropping it, and counts
// nothing of its own.
func (b *Kernel) SendDrops(Device) (SendDrops, error) { return SendDrops{}, nil }

// Ensure adopts the wireguard link d.IfName in d's namespace if it exists;
// otherwise it creates it in the underlay (or takes one left there by an
// interrupted Ensure), moves it into d's namespace, sets its MTU and brings
// it up.
func (b *Kernel) Ensure(ctx context.Context, d Device) (int, error) {
	if err := d.check(); err != nil {
		return 0, err
	}
	defer b.devices.lock(d.IfName)()
	ns, err := namespaces.Open(d.NetNS)
	if err != nil {
		return 0, fmt.Errorf("ensuring %s: %w", d.IfName, err)
	}
	defer func() { _ = ns.Close() }()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return 0, fmt.Errorf("ensuring %s: netlink in %s: %w", d.IfName, d.NetNS, err)
	}
	defer h.Close()
	if l, err := h.LinkByName(d.IfName); err == nil {
		if l.Type() != "wireguard" {
			return 0, fmt.Errorf("ensuring %s: a %s link has that name: %w", d.IfName, l.Type(), os.ErrExist)
		}
		return 0, nil
	} else if !isLinkNotFound(err) {
		return 0, fmt.Errorf("ensuring %s: %w", d.IfName, err)
	}

	uh, err := netlink.NewHandleAt(b.underlay)
	if err != nil {
		return 0, fmt.Errorf("ensuring %s: netlink in underlay: %w", d.IfName, err)
	}
	defer uh.Close()
	link, err := uh.LinkByName(d.IfName)
	switch {
	case err == nil && link.Type() != "wireguard":
		return 0, fmt.Errorf("ensuring %s: a %s link in the underlay has that name: %w", d.IfName, link.Type(), os.ErrExist)
	case err == nil:
		b.log.Warn("taking over link left in underlay", "network", d.Network, "ifname", d.IfName)
	case isLinkNotFound(err):
		wg := &netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: d.IfName, MTU: d.mtu()}}
		if err := uh.LinkAdd(wg); err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) {
				err = fmt.Errorf("%w: %w", ErrKernelUnsupported, err)
			}
			return 0, fmt.Errorf("ensuring %s: creating link: %w", d.IfName, err)
		}
		if link, err = uh.LinkByName(d.IfName); err != nil {
			return 0, fmt.Errorf("ensuring %s: %w", d.IfName, err)
		}
	default:
		return 0, fmt.Errorf("ensuring %s: %w", d.IfName, err)
	}
	if err := uh.LinkSetNsFd(link, int(ns)); err != nil {
		return 0, fmt.Errorf("ensuring %s: moving into %s: %w", d.IfName, d.NetNS, err)
	}
	l, err := h.LinkByName(d.IfName)
	if err != nil {
		return 0, fmt.Errorf("ensuring %s: %w", d.IfName, err)
	}
	if err := h.LinkSetMTU(l, d.mtu()); err != nil {
		return 0, fmt.Errorf("ensuring %s: setting mtu: %w", d.IfName, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return 0, fmt.Errorf("ensuring %s: setting up: %w", d.IfName, err)
	}
	b.log.Info("created device", "network", d.Network, "ifname", d.IfName, "netns", d.NetNS)
	return 0, nil
}

// Delete removes the link d.IfName from d's namespace, and from the
// underlay if an interrupted Ensure left it there. A missing link or
// namespace is not an error.
func (b *Kernel) Delete(ctx context.Context, d Device) error {
	if err := checkIfName(d.IfName); err != nil {
		return err
	}
	defer b.devices.lock(d.IfName)()
	var errs []error
	if ns, err := namespaces.Open(d.NetNS); err == nil {
		errs = append(errs, deleteWireguardLink(ns, d.IfName))
		_ = ns.Close()
	}
	errs = append(errs, deleteWireguardLink(b.underlay, d.IfName))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deleting %s: %w", d.IfName, err)
	}
	return nil
}

// deleteWireguardLink deletes the wireguard link name in ns, if there is one.
func deleteWireguardLink(ns netns.NsHandle, name string) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if isLinkNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Type() != "wireguard" {
		return nil
	}
	if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return err
	}
	return nil
}

// Configure applies cfg to d with a wgctrl client made inside d's namespace.
func (b *Kernel) Configure(ctx context.Context, d Device, cfg wgtypes.Config) error {
	if err := checkIfName(d.IfName); err != nil {
		return err
	}
	if err := checkConfig(d, cfg); err != nil {
		return err
	}
	return b.withClient(d, "configuring", func(c *wgctrl.Client) error {
		return c.ConfigureDevice(d.IfName, cfg)
	})
}

// Show reads d with a wgctrl client made inside d's namespace.
func (b *Kernel) Show(ctx context.Context, d Device) (*wgtypes.Device, error) {
	if err := checkIfName(d.IfName); err != nil {
		return nil, err
	}
	var dev *wgtypes.Device
	err := b.withClient(d, "reading", func(c *wgctrl.Client) error {
		var err error
		dev, err = c.Device(d.IfName)
		return err
	})
	return dev, err
}

// withClient runs fn with a wgctrl client whose generic netlink socket was
// made in d's namespace (a socket keeps its namespace for life).
func (b *Kernel) withClient(d Device, doing string, fn func(*wgctrl.Client) error) error {
	ns, err := namespaces.Open(d.NetNS)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s %s: %w: %v", doing, d.IfName, ErrNotFound, err)
		}
		return fmt.Errorf("%s %s: %w", doing, d.IfName, err)
	}
	defer func() { _ = ns.Close() }()
	var c *wgctrl.Client
	if err := namespaces.Do(ns, func() error {
		var err error
		c, err = wgctrl.New()
		return err
	}); err != nil {
		if c != nil {
			_ = c.Close()
		}
		return fmt.Errorf("%s %s: opening wgctrl: %w", doing, d.IfName, err)
	}
	defer func() { _ = c.Close() }()
	if err := fn(c); err != nil {
		return wgctrlErr(doing, d.IfName, err)
	}
	return nil
}

// isLinkNotFound reports whether err says that a link does not exist.
func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}
