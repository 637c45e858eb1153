package dataplane

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"

	"github.com/znet/znet/dnsresolver"
	"github.com/znet/znet/internal/idlemem"
	"github.com/znet/znet/namespaces"
)

// underlayFd is the file descriptor on which a data plane gets the handle
// of the underlay namespace.
const underlayFd = 3

// Run is the main of the userspace data-plane process, run as
// `znetd dataplane --ifname X --mtu N` inside the network's namespace with
// the underlay namespace passed as fd 3. args are the arguments after the
// program name; a leading "dataplane" is skipped. It serves the device until
// SIGTERM or SIGINT, then closes it and removes its UAPI socket, and returns
// the exit code: 0 after a clean stop, 1 on a runtime failure, 2 on bad
// arguments. It logs to stderr. The private key never passes through its
// arguments or environment: znetd sets it through the UAPI socket.
func Run(args []string) int {
	idlemem.Hold() // released once the device's buffers exist: see idlemem
	if len(args) > 0 && args[0] == "dataplane" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("dataplane", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	ifname := fs.String("ifname", "", "name of the WireGuard device (required)")
	mtu := fs.Int("mtu", DefaultMTU, "MTU of the device")
	verbose := fs.Bool("verbose", false, "log WireGuard's own debug messages")
	dnsSocket := fs.String("dns-socket", "", "serve the network's resolver, configured through this control `socket`")
	dropsFile := fs.String("drops-file", "", "count the packets the underlay refuses in this `file` (see SendDrops)")
	listenPort := fs.Int("listen-port", 0, "bind the UDP sockets to this `port` at start (0: when znetd sets one)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || checkIfName(*ifname) != nil || !ValidMTU(*mtu) ||
		*listenPort < 0 || *listenPort > 65535 {
		fmt.Fprintf(os.Stderr, "dataplane: bad arguments %q\n", args)
		fs.Usage()
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).
		With("ifname", *ifname, "pid", os.Getpid())
	procs := idlemem.OneProc(func() {
		idlemem.Release() // a busy data plane's garbage is not bounded as an idle one's
		log.Info("carrying traffic: all CPUs in use", "gomaxprocs", runtime.GOMAXPROCS(0))
	})
	if *dnsSocket != "" {
		stop, err := serveResolver(log, *dnsSocket, netns.NsHandle(underlayFd), procs.Batch)
		if err != nil {
			log.Error("resolver control socket", "err", err)
			return 1
		}
		defer stop()
	}
	if err := serveDataplane(log, *ifname, *mtu, *listenPort, *dropsFile, netns.NsHandle(underlayFd), procs); err != nil {
		log.Error("data plane failed", "err", err)
		return 1
	}
	return 0
}

// serveDataplane runs the device ifname until a signal arrives or the
// device or its UAPI listener fails. With dropsFile set, it counts there
// the packets the underlay refuses. Once the device has bound its UDP port
// it drops its privileges (see privileges.go). The device's traffic is
// counted in procs.
func serveDataplane(log *slog.Logger, ifname string, mtu, listenPort int, dropsFile string, underlay netns.NsHandle, procs *idlemem.Procs) error {
	if !namespaces.IsNetNS(fmt.Sprintf("/proc/self/fd/%d", underlay)) {
		return fmt.Errorf("fd %d: %w", underlay, namespaces.ErrNotNetNS)
	}
	// Before anything exists, so that an early SIGTERM still cleans up.
	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM, unix.SIGINT)
	defer signal.Stop(term)

	tdev, err := createTUN(ifname, mtu)
	if err != nil {
		return fmt.Errorf("creating tun %s: %w", ifname, err)
	}
	ubind := newUnderlayBind(conn.NewDefaultBind(), underlay)
	defer ubind.closeUnderlay()
	var bind conn.Bind = ubind
	if dropsFile != "" {
		drops, err := openDropCounter(dropsFile)
		if err != nil {
			_ = tdev.Close()
			return fmt.Errorf("drops file: %w", err)
		}
		defer func() { _ = drops.close() }() // after dev.Close, deferred below
		bind = &countingBind{Bind: bind, drops: drops}
	}
	dev := device.NewDevice(&busyTUN{Device: tdev, procs: procs}, bind, wgLogger(log))
	defer dev.Close() // closes tdev and the bind too
	if listenPort != 0 {
		// Set while the device is down: the sockets open once, when it
		// goes up below.
		if err := dev.IpcSet(fmt.Sprintf("listen_port=%d\n", listenPort)); err != nil {
			return fmt.Errorf("setting listen port %d: %w", listenPort, err)
		}
	}
	if err := allowLowPorts(); err != nil {
		return err
	}

	uapiFile, err := ipc.UAPIOpen(ifname)
	if err != nil {
		return fmt.Errorf("opening UAPI socket: %w", err)
	}
	// Not ipc.UAPIListen: it watches the socket's directory with an inotify
	// instance of its own, and Linux gives root only 128 of those
	// (fs.inotify.max_user_instances), so a node could not run much more
	// than 120 networks. A data plane whose socket was removed is found by
	// Ensure (it does not answer) and replaced.
	uapi, err := net.FileListener(uapiFile)
	_ = uapiFile.Close()
	if err != nil {
		return fmt.Errorf("listening on UAPI socket: %w", err)
	}
	defer func() { _ = os.Remove(UAPISocket(ifname)) }()
	defer func() { _ = uapi.Close() }()
	if err := linkUp(ifname); err != nil {
		return err
	}
	drop := func() error {
		ubind.closeUnderlay()
		uid := UID(ifname)
		if err := dropPrivileges(uid); err != nil {
			return err // fail closed: never serve with them
		}
		log.Info("dropped privileges", "uid", uid)
		return nil
	}
	bound := ubind.bound
	if listenPort != 0 {
		// Bind now and drop before serving anything: znetd sees the data
		// plane ready (its UAPI socket answers) only once it runs without
		// privileges, and pushes DNS only after that.
		if err := bindNow(dev, ubind); err != nil {
			return fmt.Errorf("binding port %d: %w", listenPort, err)
		}
		if err := drop(); err != nil {
			return err
		}
		bound = nil
	}
	errs := make(chan error, 1)
	go func() { errs <- acceptUAPI(uapi, func(c net.Conn) { handleUAPI(log, dev, c) }) }()
	// znetd configures the peers and pushes the resolver's first config
	// right after the data plane answers: let those land on fresh pages,
	// then bound the garbage an idle data plane keeps.
	idlemem.BoundIdleGarbage(10 * time.Second)
	log.Info("data plane running", "mtu", mtu)

	for {
		select {
		case sig := <-term:
			log.Info("stopping", "signal", sig.String())
			return nil
		case err := <-errs:
			return fmt.Errorf("UAPI listener: %w", err)
		case <-dev.Wait():
			return errors.New("device closed")
		case err := <-ubind.fatal:
			return err
		case <-bound:
			bound = nil
			if err := drop(); err != nil {
				return err
			}
		}
	}
}

// bindNow brings dev up, which opens its UDP sockets on the port set
// before, and checks that they are open. Up is synchronous: when it
// returns, any transition the TUN's own up event started is done too.
func bindNow(dev *device.Device, b *underlayBind) error {
	if err := dev.Up(); err != nil {
		return err
	}
	select {
	case <-b.bound:
		return nil
	default:
		return errors.New("the device is up but its port is not bound")
	}
}

// serveResolver listens on the resolver's control socket (mode 0600); the
// resolver itself starts with the first config znetd pushes. It lives in
// this process so that names keep answering while znetd is down. onAnswer
// (nil: none) is called for every answer it sends.
func serveResolver(log *slog.Logger, path string, underlay netns.NsHandle, onAnswer func()) (stop func(), err error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// Names outside the zone (networks with egress) are asked from the
	// underlay, like the WireGuard socket: the network's namespace itself
	// has no way out.
	var up *net.UDPConn
	if err := namespaces.Do(underlay, func() error {
		up, err = net.ListenUDP("udp", &net.UDPAddr{})
		return err
	}); err != nil {
		return nil, fmt.Errorf("upstream DNS socket in the underlay: %w", err)
	}
	fwd := dnsresolver.NewForwarder(up, log.With("part", "dns-forward"), 0)
	old := unix.Umask(0o177)
	l, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		_ = fwd.Close()
		return nil, err
	}
	lazy := dnsresolver.NewLazy(log.With("part", "dns"), dnsresolver.Options{Forwarder: fwd, OnAnswer: onAnswer})
	stopControl := dnsresolver.ServeControl(l, lazy)
	return func() {
		stopControl()
		_ = lazy.Close()
		_ = fwd.Close()
		_ = os.Remove(path)
	}, nil
}

// linkUp brings ifname up in the process's own namespace.
func linkUp(ifname string) error {
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	l, err := h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("finding %s: %w", ifname, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("setting %s up: %w", ifname, err)
	}
	return nil
}

// underlayBind is a conn.Bind whose sockets are opened in the underlay
// namespace: a socket keeps the namespace of the thread that made it, so
// Open runs on a locked thread switched into the underlay and back, and
// everything else of the process stays in the network's namespace.
//
// The first Open of a real port (not 0) is announced on bound, after which
// the data plane closes the underlay handle and drops its privileges; an
// Open after that cannot work and is reported on fatal.
type underlayBind struct {
	conn.Bind
	bound chan struct{} // closed by the first Open of a port
	fatal chan error    // one Open after the drop

	mu       sync.Mutex
	underlay netns.NsHandle // -1 once closed
}

func newUnderlayBind(b conn.Bind, underlay netns.NsHandle) *underlayBind {
	return &underlayBind{Bind: b, underlay: underlay, bound: make(chan struct{}), fatal: make(chan error, 1)}
}

// Open opens the wrapped Bind from inside the underlay namespace.
func (b *underlayBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.underlay.IsOpen() {
		select {
		case b.fatal <- errRebind:
		default:
		}
		return nil, 0, errRebind
	}
	var (
		fns     []conn.ReceiveFunc
		actual  uint16
		openErr error
	)
	err := namespaces.Do(b.underlay, func() error {
		fns, actual, openErr = b.Bind.Open(port)
		return nil
	})
	if err != nil {
		if openErr == nil && fns != nil {
			_ = b.Close()
		}
		return nil, 0, fmt.Errorf("opening sockets in underlay: %w", err)
	}
	if openErr == nil && port != 0 {
		select {
		case <-b.bound:
		default:
			close(b.bound)
		}
	}
	// Returned as is: wireguard-go may compare it (ErrBindAlreadyOpen).
	return fns, actual, openErr
}

// closeUnderlay closes the underlay handle; an Open after it fails. Safe
// twice.
func (b *underlayBind) closeUnderlay() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.underlay.IsOpen() {
		_ = b.underlay.Close()
		b.underlay = netns.None()
	}
}

// wgLogger sends wireguard-go's log lines to log: errors as errors, the
// rest at debug level. Without debug, verbose lines are discarded before
// they are formatted: wireguard-go emits some per packet (a peer's packet
// with a source address it may not use, a keepalive), and formatting one
// (the peer's key in base64) costs more than the packet's own handling.
func wgLogger(log *slog.Logger) *device.Logger {
	verbose := device.DiscardLogf
	if log.Enabled(context.Background(), slog.LevelDebug) {
		verbose = func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...)) }
	}
	return &device.Logger{
		Verbosef: verbose,
		Errorf:   func(format string, args ...any) { log.Error(fmt.Sprintf(format, args...)) },
	}
}
