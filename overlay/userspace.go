package overlay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/dataplane"
	"github.com/znet/znet/internal/idlemem"
	"github.com/znet/znet/namespaces"
)

// ErrClosed is returned by the methods of a closed backend.
var ErrClosed = errors.New("backend closed")

const (
	// startTimeout bounds how long Ensure waits for a new data plane to
	// answer when ctx has no earlier deadline.
	startTimeout = 15 * time.Second
	// defaultTermGrace is how long a data plane gets to exit after SIGTERM
	// before it is killed.
	defaultTermGrace = 5 * time.Second
	// killWait is how long a killed data plane may take to vanish.
	killWait = 5 * time.Second
	// reapInterval is how often children that exited on their own are
	// reaped.
	reapInterval = 250 * time.Millisecond
)

// Userspace is the userspace backend: one data-plane process per device
// (dataplane.Run), forked inside the device's namespace. Data planes outlive
// the backend and the daemon: Close leaves them running and a later backend
// with the same RunDir adopts them.
type Userspace struct {
	log       *slog.Logger
	underlay  netns.NsHandle // owned
	runDir    string
	exe       string
	env       []string
	termGrace time.Duration
	devices   keyedMutex

	mu       sync.Mutex
	children map[int]*child  // started by us and not reaped yet
	exits    map[string]exit // the last reaped child per ifname
	// atStart are the data planes that ran when the backend was made, by
	// device name: those whose pid file was lost are found here (any
	// started later is a child).
	atStart map[string]int
	closed  bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// child is a data plane this backend started.
type child struct {
	ifname  string
	network string        // for logs
	exited  chan struct{} // closed once reaped
}

var _ Backend = (*Userspace)(nil)

// newUserspace returns a userspace backend; it starts the reaper.
func newUserspace(opts Options) (*Userspace, error) {
	exe, underlay, err := dataplane.Prepare("userspace backend", opts.RunDir, opts.Exe, opts.Underlay)
	if err != nil {
		return nil, err
	}
	b := &Userspace{
		log:       logger(opts.Logger).With("backend", "userspace"),
		underlay:  underlay,
		runDir:    opts.RunDir,
		exe:       exe,
		env:       opts.Env,
		termGrace: defaultTermGrace,
		children:  map[int]*child{},
		exits:     map[string]exit{},
		atStart:   dataplane.Running(),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go b.reaper()
	return b, nil
}

// Kind returns "userspace".
func (b *Userspace) Kind() string { return "userspace" }

// Close stops the backend's reaper and releases its handles. It does not
// stop any data plane: they keep forwarding without the daemon. It is safe
// to call twice.
func (b *Userspace) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.stop)
		<-b.done
		err = b.underlay.Close()
	})
	return err
}

func (b *Userspace) pidFile(ifname string) string {
	return filepath.Join(b.runDir, ifname+".pid")
}

// dnsSocket is where d's data plane serves the network's resolver (see
// dataplane.ResolverSocket): it runs there so that names keep answering
// while znetd is down.
func (b *Userspace) dnsSocket(d Device) string {
	return dataplane.ResolverSocket(b.runDir, d.IfName)
}

// dropsFile returns where the data plane of ifname counts its drops.
func (b *Userspace) dropsFile(ifname string) string {
	return dataplane.DropsFile(b.runDir, ifname)
}

// SendDrops implements Backend: the data plane counts into its drops file,
// read here without talking to the process, so a stopped or busy data plane
// never delays the answer. A data plane started before znetd knew the file
// has none: zero.
func (b *Userspace) SendDrops(d Device) (SendDrops, error) {
	if err := checkIfName(d.IfName); err != nil {
		return SendDrops{}, err
	}
	return dataplane.ReadDrops(b.dropsFile(d.IfName))
}

func (b *Userspace) logFile(ifname string) string {
	return filepath.Join(b.runDir, ifname+".log")
}

func (b *Userspace) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// PID returns the pid of d's data plane as recorded in its pid file, if that
// process runs and is d's data plane, or 0.
func (b *Userspace) PID(d Device) int {
	if checkIfName(d.IfName) != nil {
		return 0
	}
	pid, err := dataplane.ReadPidFile(b.pidFile(d.IfName))
	if err != nil || !dataplane.IsDataplane(pid, d.IfName) {
		return 0
	}
	return pid
}

// Ensure adopts d's data plane if it runs in d's namespace and answers on
// its UAPI socket; otherwise it stops whatever is left of it and starts a
// new one, then waits (bounded by ctx) until that one answers.
func (b *Userspace) Ensure(ctx context.Context, d Device) (int, error) {
	if err := d.check(); err != nil {
		return 0, err
	}
	if b.isClosed() {
		return 0, ErrClosed
	}
	defer b.devices.lock(d.IfName)()
	wantIno, err := dataplane.PathIno(d.NetNS)
	if err != nil || !namespaces.IsNetNS(d.NetNS) {
		return 0, fmt.Errorf("ensuring %s: namespace %s: %w", d.IfName, d.NetNS, errors.Join(err, namespaces.ErrNotNetNS))
	}
	pidFile := b.pidFile(d.IfName)
	if pid := b.find(d.IfName); pid != 0 {
		ino, inoErr := dataplane.NetnsIno(pid)
		var reason error
		switch {
		case inoErr != nil:
			reason = inoErr
		case ino != wantIno:
			reason = fmt.Errorf("runs in another namespace (net:[%d])", ino)
		default:
			server, err := uapiAnswers(ctx, d.IfName)
			if err == nil && server != pid {
				err = fmt.Errorf("its socket is served by pid %d", server)
			}
			reason = err
		}
		if reason == nil {
			if got, err := dataplane.ReadPidFile(pidFile); err != nil || got != pid {
				if err := dataplane.WritePidFile(pidFile, pid); err != nil {
					return 0, fmt.Errorf("ensuring %s: %w", d.IfName, err)
				}
			}
			b.log.Debug("adopted data plane", "network", d.Network, "ifname", d.IfName, "pid", pid)
			return pid, nil
		}
		b.log.Warn("replacing data plane", "network", d.Network, "ifname", d.IfName, "pid", pid, "reason", reason)
		if err := b.terminate(ctx, pid, d); err != nil {
			return 0, fmt.Errorf("ensuring %s: %w", d.IfName, err)
		}
	}
	if err := waitLinkGone(ctx, d); err != nil {
		return 0, fmt.Errorf("ensuring %s: %w", d.IfName, err)
	}
	pid, err := b.start(ctx, d)
	if err != nil {
		return 0, fmt.Errorf("ensuring %s: %w", d.IfName, err)
	}
	return pid, nil
}

// start forks a data plane for d inside d's namespace and waits until it
// answers. On failure the process is stopped again.
func (b *Userspace) start(ctx context.Context, d Device) (int, error) {
	if err := os.MkdirAll(b.runDir, 0o700); err != nil {
		return 0, fmt.Errorf("creating run directory: %w", err)
	}
	logPath := b.logFile(d.IfName)
	args := dataplane.Args(d.IfName, d.mtu(), d.ListenPort, b.dnsSocket(d), b.dropsFile(d.IfName))
	// One P until it carries traffic: see idlemem.OneProc.
	env := append(idlemem.OneProcEnv(), b.env...)
	l, err := dataplane.NewLaunch(b.exe, args, env, logPath, d.NetNS, b.underlay)
	if err != nil {
		return 0, err
	}
	defer l.Close()

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, ErrClosed
	}
	if err := l.Start(); err != nil {
		b.mu.Unlock()
		return 0, err
	}
	pid := l.Cmd.Process.Pid
	c := &child{ifname: d.IfName, network: d.Network, exited: make(chan struct{})}
	b.children[pid] = c
	b.mu.Unlock()
	// The reaper waits for the child by pid, so that Close need not wait
	// for data planes to exit.
	_ = l.Cmd.Process.Release()
	b.log.Info("started data plane", "network", d.Network, "ifname", d.IfName, "pid", pid, "netns", d.NetNS)

	if err := dataplane.WritePidFile(b.pidFile(d.IfName), pid); err != nil {
		return 0, errors.Join(err, b.terminate(context.WithoutCancel(ctx), pid, d))
	}
	if err := b.waitReady(ctx, pid, c); err != nil {
		err = fmt.Errorf("data plane %d: %w", pid, err)
		if t := dataplane.Tail(logPath, 512); t != "" {
			err = fmt.Errorf("%w; log: %s", err, t)
		}
		kerr := b.terminate(context.WithoutCancel(ctx), pid, d)
		_ = dataplane.RemoveIfExists(b.pidFile(d.IfName))
		return 0, errors.Join(err, kerr)
	}
	return pid, nil
}

// waitReady polls until the data plane's UAPI socket answers, the child
// exits, or ctx (at most startTimeout) ends.
func (b *Userspace) waitReady(ctx context.Context, pid int, c *child) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	delay := 5 * time.Millisecond
	for {
		server, err := uapiAnswers(ctx, c.ifname)
		if err == nil && server == pid {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("socket served by pid %d", server)
		}
		b.reap(pid)
		select {
		case <-c.exited:
			return errors.New("exited during start")
		case <-ctx.Done():
			return fmt.Errorf("waiting for UAPI socket: %w (last: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// Delete stops d's data plane (SIGTERM, SIGKILL after a grace period),
// waits until it is gone and removes its pid file, log, drops file and
// sockets.
func (b *Userspace) Delete(ctx context.Context, d Device) error {
	if err := checkIfName(d.IfName); err != nil {
		return err
	}
	if b.isClosed() {
		return ErrClosed
	}
	defer b.devices.lock(d.IfName)()
	if pid := b.find(d.IfName); pid != 0 {
		if err := b.terminate(ctx, pid, d); err != nil {
			return fmt.Errorf("deleting %s: %w", d.IfName, err)
		}
		b.log.Info("stopped data plane", "network", d.Network, "ifname", d.IfName, "pid", pid)
	}
	b.mu.Lock()
	delete(b.exits, d.IfName)
	b.mu.Unlock()
	var errs []error
	errs = append(errs, dataplane.RemoveIfExists(b.pidFile(d.IfName)), dataplane.RemoveIfExists(b.logFile(d.IfName)),
		dataplane.RemoveIfExists(b.dropsFile(d.IfName)))
	// A socket that still answers belongs to a process that is not ours.
	if _, err := uapiAnswers(ctx, d.IfName); err != nil {
		errs = append(errs, dataplane.RemoveIfExists(socketPath(d.IfName)))
		errs = append(errs, dataplane.RemoveIfExists(b.dnsSocket(d)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deleting %s: %w", d.IfName, err)
	}
	return nil
}

// Configure applies cfg to d through its UAPI socket, within ctx's
// deadline or configureTimeout; a data plane that does not answer in time
// gives ErrNotResponding.
func (b *Userspace) Configure(ctx context.Context, d Device, cfg wgtypes.Config) error {
	if err := checkIfName(d.IfName); err != nil {
		return err
	}
	if err := checkConfig(d, cfg); err != nil {
		return err
	}
	if b.isClosed() {
		return ErrClosed
	}
	if err := uapiSet(ctx, socketPath(d.IfName), cfg); err != nil {
		return fmt.Errorf("configuring %s: %w", d.IfName, err)
	}
	return nil
}

// Show reads d through its UAPI socket, within ctx's deadline or
// showTimeout; a data plane that does not answer in time gives
// ErrNotResponding.
func (b *Userspace) Show(ctx context.Context, d Device) (*wgtypes.Device, error) {
	if err := checkIfName(d.IfName); err != nil {
		return nil, err
	}
	if b.isClosed() {
		return nil, ErrClosed
	}
	dev, err := uapiGet(ctx, socketPath(d.IfName), d.IfName)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", d.IfName, err)
	}
	return dev, nil
}
