package overlay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/dataplane"
	"github.com/znet/znet/internal/linkname"
)

// DefaultMTU is the MTU a Device gets when its MTU is 0.
const DefaultMTU = dataplane.DefaultMTU

// SendDrops is what a device could not send on the underlay (see
// dataplane.SendDrops).
type SendDrops = dataplane.SendDrops

// Device names one network's WireGuard device on this node.
type Device struct {
	// IfName is unique on the machine: the userspace UAPI socket
	// /var/run/wireguard/<ifname>.sock is shared by all namespaces.
	IfName string
	// NetNS is the path of the network's namespace, e.g.
	// /run/netns/zn-node1.shop.
	NetNS string
	// MTU of the device; 0 means DefaultMTU. Only used when the device is
	// created: an adopted device keeps its MTU.
	MTU int
	// ListenPort is the UDP port a userspace data plane binds when it
	// starts, before it drops its privileges (0: the first Configure sets
	// it, and the data plane drops them then). Only used when the device
	// is created; the kernel backend ignores it.
	ListenPort int
	// Network is the name of the network the device serves; only for
	// logs, so that every line about a network names it.
	Network string
}

// IfName returns the device name for network on node nodeID: "zn" and the
// first 10 hex digits of sha256(nodeID+"/"+network). It is 12 characters
// (below IFNAMSIZ) and, in practice, unique per machine.
func IfName(nodeID, network string) string {
	sum := sha256.Sum256([]byte(nodeID + "/" + network))
	return "zn" + hex.EncodeToString(sum[:])[:10]
}

// Backend creates, adopts, configures and deletes WireGuard devices. It is
// safe for concurrent use; Ensure and Delete of the same device are
// serialised, while Configure and Show go straight to the device.
type Backend interface {
	// Kind returns "kernel" or "userspace".
	Kind() string
	// Ensure makes d exist in its namespace with its UDP socket in the
	// underlay namespace. A device that already runs is adopted untouched
	// (no restart, no key, peer or handshake reset). It returns the
	// data-plane process id (0 for kernel).
	Ensure(ctx context.Context, d Device) (pid int, err error)
	// Delete stops and removes d. It is idempotent and returns only when
	// the data-plane process, if any, is gone.
	Delete(ctx context.Context, d Device) error
	// Configure applies cfg through wgctrl: key, listen port and peer
	// deltas. cfg.ReplacePeers must be false (ErrReplacePeers); peers are
	// changed one by one with UpdateOnly and Remove. A missing device gives
	// ErrNotFound.
	Configure(ctx context.Context, d Device, cfg wgtypes.Config) error
	// Show reads d through wgctrl. A missing device gives ErrNotFound.
	Show(ctx context.Context, d Device) (*wgtypes.Device, error)
	// PID returns the process id of d's running data plane, or 0 when none
	// runs or the backend has no processes (kernel).
	PID(d Device) int
	// Wait blocks until the data plane pid of d exits and returns how it
	// ended ("killed by signal 9 (killed)", "exited with status 2"), or
	// until ctx ends (ctx's error). A pid that is no data plane of d (any
	// more) counts as exited. Backends without processes (kernel) return
	// ErrNoProcess at once. It is safe to call concurrently with the other
	// methods: a Delete or a replacing Ensure makes it return too.
	Wait(ctx context.Context, d Device, pid int) (reason string, err error)
	// SendDrops returns what d could not send on the underlay, without
	// waiting for d's data plane; zero for a backend whose device never
	// drops for size (the kernel fragments its outer packets).
	SendDrops(d Device) (SendDrops, error)
}

// ErrNotFound is returned (wrapped) by Show and Configure when the device
// does not exist or its data plane does not answer.
var ErrNotFound = errors.New("device not found")

// ErrNoProcess is returned by Wait of a backend that runs no data-plane
// process (kernel).
var ErrNoProcess = errors.New("no data-plane process")

// ErrKernelUnsupported is returned (wrapped, together with the kernel's
// EOPNOTSUPP or EINVAL) by New for kind "kernel" when the kernel cannot make
// WireGuard links.
var ErrKernelUnsupported = errors.New("kernel has no WireGuard")

// ErrReplacePeers is returned by Configure for a config with ReplacePeers
// set: replacing all peers at once would blink healthy tunnels.
var ErrReplacePeers = errors.New("replacing all peers is not allowed")

// ErrUnknownKind is returned by New for a kind other than auto, kernel and
// userspace.
var ErrUnknownKind = errors.New("unknown WireGuard backend")

// Options configures a backend made by New.
type Options struct {
	// Underlay is the namespace znetd runs in, where UDP sockets go. New
	// duplicates it, so the caller keeps (and closes) its own handle. The
	// zero value and netns.None() mean the calling thread's namespace.
	Underlay netns.NsHandle
	// RunDir holds pid files and data-plane logs, e.g. <state-dir>/run.
	// Required for userspace.
	RunDir string
	// Exe is the binary run as data plane; default dataplane.Exe(). It
	// must dispatch `<exe> dataplane ...` to dataplane.Main.
	Exe string
	// Env is added to the data plane's environment (after os.Environ()).
	Env []string
	// Logger gets lifecycle events; default: discard.
	Logger *slog.Logger
}

// New returns the backend for kind "auto" (kernel if the kernel has
// WireGuard, else userspace), "kernel" or "userspace". The concrete types
// have a Close method that releases the backend's resources but leaves
// every device, and every data-plane process, running.
func New(kind string, opts Options) (Backend, error) {
	switch kind {
	case "kernel":
		if err := ProbeKernel(); err != nil {
			return nil, err
		}
		return newKernel(opts)
	case "userspace":
		return newUserspace(opts)
	case "auto", "":
		err := ProbeKernel()
		if err == nil {
			return newKernel(opts)
		}
		if !errors.Is(err, ErrKernelUnsupported) {
			return nil, err
		}
		return newUserspace(opts)
	default:
		return nil, fmt.Errorf("%q: %w", kind, ErrUnknownKind)
	}
}

// underlayHandle returns a handle of the underlay that the backend owns.
func underlayHandle(h netns.NsHandle) (netns.NsHandle, error) { return dataplane.OwnHandle(h) }

// logger returns l or a logger that discards.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// check validates d for Ensure.
func (d Device) check() error {
	if err := checkIfName(d.IfName); err != nil {
		return err
	}
	if d.NetNS == "" {
		return fmt.Errorf("device %s: no namespace: %w", d.IfName, os.ErrInvalid)
	}
	if !dataplane.ValidMTU(d.MTU) {
		return fmt.Errorf("device %s: mtu %d: %w", d.IfName, d.MTU, os.ErrInvalid)
	}
	return nil
}

// mtu returns d's MTU or DefaultMTU.
func (d Device) mtu() int {
	if d.MTU == 0 {
		return DefaultMTU
	}
	return d.MTU
}

// checkIfName accepts names that are valid Linux interface names and safe
// as file names.
func checkIfName(name string) error {
	if err := linkname.Check(name); err != nil {
		return fmt.Errorf("interface name %q: %w", name, os.ErrInvalid)
	}
	return nil
}

// checkConfig rejects configs that would replace all peers.
func checkConfig(d Device, cfg wgtypes.Config) error {
	if cfg.ReplacePeers {
		return fmt.Errorf("configuring %s: %w", d.IfName, ErrReplacePeers)
	}
	return nil
}
