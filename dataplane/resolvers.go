package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/namespaces"
)

// Timings of resolver-only processes.
const (
	// resolverStart bounds how long Ensure waits for a new resolver to
	// listen on its control socket.
	resolverStart = 15 * time.Second
	// resolverGrace is how long a resolver gets to exit after SIGTERM
	// before it is killed, and a killed one to vanish.
	resolverGrace = 5 * time.Second
)

// unknownExit is the reason Wait gives for a process that this Resolvers
// did not start: only a parent learns how a process ended.
const unknownExit = "exited (how is unknown: it was started by an earlier znetd)"

// ResolverOptions configures NewResolvers.
type ResolverOptions struct {
	// Underlay is where the resolvers' forwarding sockets go (znetd's
	// namespace); NewResolvers duplicates it. The zero value means the
	// calling thread's namespace.
	Underlay netns.NsHandle
	// RunDir holds pid files, logs and control sockets (ResolverSocket).
	RunDir string
	// Exe is the program; default Exe(). It must dispatch
	// `<exe> resolver ...` to RunResolver (Main does).
	Exe string
	// Env is added to the processes' environment.
	Env []string
	// Logger gets lifecycle events; default: discard.
	Logger *slog.Logger
}

// Resolvers starts, adopts, watches and stops the resolver-only processes
// of networks whose WireGuard device runs no process of its own (kernel).
// A process is named by its network's device name, runs in the network's
// namespace and serves ResolverSocket(RunDir, ifname). Like data planes,
// the processes outlive znetd: Close leaves them running and a later
// Resolvers with the same RunDir adopts them through their pid files (or,
// for one whose pid file is missing, through the processes running then).
// Calls for one ifname must not overlap (the daemon's lock sees to it).
type Resolvers struct {
	log      *slog.Logger
	underlay netns.NsHandle // owned
	runDir   string
	exe      string
	env      []string

	mu       sync.Mutex
	children map[int]*resolverChild // started by this Resolvers, by pid
	exits    map[string]lastExit    // the last reaped child per ifname
	// atStart are the resolvers that ran when this Resolvers was made, by
	// ifname: one whose pid file is missing (an earlier znetd died between
	// the fork and writing it) is still adopted or stopped, never left
	// running in its namespace beside a second one.
	atStart map[string]int
}

// lastExit is how a reaped child ended.
type lastExit struct {
	pid    int
	reason string
}

// resolverChild is a process this Resolvers started; reason is set and
// done closed once it has been reaped.
type resolverChild struct {
	ifname string
	done   chan struct{}
	reason string
}

// NewResolvers returns a Resolvers for opts.
func NewResolvers(opts ResolverOptions) (*Resolvers, error) {
	exe, underlay, err := Prepare("resolvers", opts.RunDir, opts.Exe, opts.Underlay)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Resolvers{
		log: log.With("part", "resolvers"), underlay: underlay, runDir: opts.RunDir,
		exe: exe, env: opts.Env, children: map[int]*resolverChild{}, exits: map[string]lastExit{},
		atStart: running(modeResolver),
	}, nil
}

// Prepare readies what a runner of data-plane processes (what) needs: its
// run directory made, the binary to run (exe, or Exe's default when
// empty) and a handle of the underlay (see OwnHandle) that the caller owns
// and closes.
func Prepare(what, runDir, exe string, underlay netns.NsHandle) (string, netns.NsHandle, error) {
	if runDir == "" {
		return "", netns.None(), fmt.Errorf("%s: no run directory: %w", what, os.ErrInvalid)
	}
	if exe == "" {
		var err error
		if exe, err = Exe(); err != nil {
			return "", netns.None(), err
		}
	}
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return "", netns.None(), fmt.Errorf("creating run directory: %w", err)
	}
	h, err := OwnHandle(underlay)
	if err != nil {
		return "", netns.None(), err
	}
	return exe, h, nil
}

// OwnHandle returns a handle of namespace h (the caller's when h is not
// open) that the caller owns.
func OwnHandle(h netns.NsHandle) (netns.NsHandle, error) {
	if h <= 0 {
		cur, err := netns.Get()
		if err != nil {
			return netns.None(), fmt.Errorf("getting current namespace: %w", err)
		}
		return cur, nil
	}
	dup, err := DupFd(int(h))
	if err != nil {
		return netns.None(), fmt.Errorf("duplicating underlay handle: %w", err)
	}
	return netns.NsHandle(dup), nil
}

// Close releases the underlay handle; the processes keep running.
func (r *Resolvers) Close() error { return r.underlay.Close() }

// resolverPidSuffix ends the name of a resolver's pid file.
const resolverPidSuffix = ".resolver.pid"

func (r *Resolvers) pidFile(ifname string) string {
	return filepath.Join(r.runDir, ifname+resolverPidSuffix)
}

func (r *Resolvers) logFile(ifname string) string {
	return filepath.Join(r.runDir, ifname+".resolver.log")
}

// Socket returns the control socket of ifname's resolver.
func (r *Resolvers) Socket(ifname string) string { return ResolverSocket(r.runDir, ifname) }

// ours reports whether pid is the resolver of ifname: a child of ours not
// reaped yet, or a live process whose command line says so.
func (r *Resolvers) ours(pid int, ifname string) bool {
	r.mu.Lock()
	c, ok := r.children[pid]
	r.mu.Unlock()
	if ok && c.ifname == ifname {
		return true
	}
	return isMode(pid, modeResolver, ifname)
}

// PID returns the pid of ifname's resolver as its pid file says, else
// the one that ran when r was made, if that process runs and is that
// resolver; else 0.
func (r *Resolvers) PID(ifname string) int {
	if checkIfName(ifname) != nil {
		return 0
	}
	if pid, err := ReadPidFile(r.pidFile(ifname)); err == nil && r.ours(pid, ifname) {
		return pid
	}
	if pid := r.atStart[ifname]; pid != 0 && isMode(pid, modeResolver, ifname) {
		return pid
	}
	return 0
}

// List returns the devices whose resolver runs from r's run directory,
// sorted: those whose pid file names a live resolver of theirs, and those
// that ran when r was made and serve their control socket there (a pid
// file lost). Resolvers of other run directories (another znetd on the
// machine) are left out. znetd's start sweeps those of networks its state
// does not know.
func (r *Resolvers) List(ctx context.Context) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(r.runDir, "*"+resolverPidSuffix))
	if err != nil {
		return nil, fmt.Errorf("listing resolvers: %w", err)
	}
	found := map[string]bool{}
	for _, f := range files {
		ifname := strings.TrimSuffix(filepath.Base(f), resolverPidSuffix)
		if checkIfName(ifname) == nil && r.PID(ifname) != 0 {
			found[ifname] = true
		}
	}
	for ifname, pid := range r.atStart {
		if found[ifname] || !isMode(pid, modeResolver, ifname) {
			continue
		}
		if server, err := socketServer(ctx, r.Socket(ifname)); err == nil && server == pid {
			found[ifname] = true
		}
	}
	return slices.Sorted(maps.Keys(found)), nil
}

// Ensure adopts ifname's resolver if it runs in the namespace at netnsPath
// and serves its control socket; otherwise it stops what is left of it and
// starts a new one, and waits (bounded by ctx) until that one listens. It
// returns the process id.
func (r *Resolvers) Ensure(ctx context.Context, ifname, netnsPath string) (int, error) {
	if err := checkIfName(ifname); err != nil {
		return 0, err
	}
	wantIno, err := PathIno(netnsPath)
	if err != nil || !namespaces.IsNetNS(netnsPath) {
		return 0, fmt.Errorf("resolver of %s: namespace %s: %w", ifname, netnsPath, errors.Join(err, namespaces.ErrNotNetNS))
	}
	if pid := r.PID(ifname); pid != 0 {
		reason := r.adoptable(ctx, pid, ifname, wantIno)
		if reason == nil {
			if got, err := ReadPidFile(r.pidFile(ifname)); err != nil || got != pid {
				if err := WritePidFile(r.pidFile(ifname), pid); err != nil {
					return 0, fmt.Errorf("resolver of %s: %w", ifname, err)
				}
			}
			r.log.Debug("adopted resolver", "ifname", ifname, "pid", pid)
			return pid, nil
		}
		r.log.Warn("replacing resolver", "ifname", ifname, "pid", pid, "reason", reason)
		if err := r.stop(ctx, pid, ifname); err != nil {
			return 0, fmt.Errorf("resolver of %s: %w", ifname, err)
		}
	}
	pid, err := r.start(ctx, ifname, netnsPath)
	if err != nil {
		return 0, fmt.Errorf("resolver of %s: %w", ifname, err)
	}
	return pid, nil
}

// adoptable returns why resolver pid cannot be adopted, nil if it can: it
// must run in the namespace with inode wantIno and serve its socket.
func (r *Resolvers) adoptable(ctx context.Context, pid int, ifname string, wantIno uint64) error {
	ino, err := NetnsIno(pid)
	if err != nil {
		return err
	}
	if ino != wantIno {
		return fmt.Errorf("runs in another namespace (net:[%d])", ino)
	}
	server, err := socketServer(ctx, r.Socket(ifname))
	if err == nil && server != pid {
		err = fmt.Errorf("its socket is served by pid %d", server)
	}
	return err
}

// socketServer returns the pid of the process listening on the Unix socket
// at path.
func socketServer(ctx context.Context, path string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.Close() }()
	return PeerPID(c)
}

// start forks ifname's resolver in the namespace at netnsPath and waits
// until it serves its socket; on failure the process is stopped again.
func (r *Resolvers) start(ctx context.Context, ifname, netnsPath string) (int, error) {
	logPath := r.logFile(ifname)
	l, err := NewLaunch(r.exe, []string{modeResolver, "--ifname", ifname, "--dns-socket", r.Socket(ifname)},
		r.env, logPath, netnsPath, r.underlay)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	if err := l.Start(); err != nil {
		return 0, err
	}
	cmd := l.Cmd
	pid := cmd.Process.Pid
	c := &resolverChild{ifname: ifname, done: make(chan struct{})}
	r.mu.Lock()
	r.children[pid] = c
	r.mu.Unlock()
	go r.reap(cmd, c)
	r.log.Info("started resolver", "ifname", ifname, "pid", pid, "netns", netnsPath)

	err = WritePidFile(r.pidFile(ifname), pid)
	if err == nil {
		err = r.waitReady(ctx, pid, c)
		if t := Tail(logPath, 512); err != nil && t != "" {
			err = fmt.Errorf("%w; log: %s", err, t)
		}
	}
	if err != nil {
		err = errors.Join(fmt.Errorf("resolver %d: %w", pid, err), r.stop(context.WithoutCancel(ctx), pid, ifname),
			RemoveIfExists(r.pidFile(ifname)))
		return 0, err
	}
	return pid, nil
}

// reap waits for child c and records how it ended.
func (r *Resolvers) reap(cmd *exec.Cmd, c *resolverChild) {
	_ = cmd.Wait() // its ProcessState says how it ended
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	c.reason = ExitReason(unix.WaitStatus(ws), nil)
	r.mu.Lock()
	delete(r.children, cmd.Process.Pid)
	r.exits[c.ifname] = lastExit{pid: cmd.Process.Pid, reason: c.reason}
	r.mu.Unlock()
	close(c.done)
	r.log.Info("resolver exited", "ifname", c.ifname, "pid", cmd.Process.Pid, "how", c.reason)
}

// waitReady polls until resolver pid serves its socket, exits, or ctx (at
// most resolverStart) ends.
func (r *Resolvers) waitReady(ctx context.Context, pid int, c *resolverChild) error {
	ctx, cancel := context.WithTimeout(ctx, resolverStart)
	defer cancel()
	delay := 5 * time.Millisecond
	for {
		server, err := socketServer(ctx, r.Socket(c.ifname))
		if err == nil && server == pid {
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("exited during start: %s", c.reason)
		case <-ctx.Done():
			return fmt.Errorf("waiting for its control socket: %w (last: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// Wait blocks until resolver pid of ifname exits and says how, or until
// ctx ends (ctx's error). A pid that is not that resolver (any more)
// counts as exited.
func (r *Resolvers) Wait(ctx context.Context, ifname string, pid int) (string, error) {
	fd, err := r.open(pid, ifname)
	if err != nil {
		return "", err
	}
	if fd >= 0 {
		if err := WaitPidfd(ctx, fd); err != nil {
			return "", err
		}
	}
	r.mu.Lock()
	c, e := r.children[pid], r.exits[ifname]
	r.mu.Unlock()
	switch {
	case c != nil:
		select {
		case <-c.done: // reaped right after the exit
			return c.reason, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	case e.pid == pid:
		return e.reason, nil
	}
	return unknownExit, nil
}

// open returns a pidfd of pid if it is ifname's resolver, else -1.
func (r *Resolvers) open(pid int, ifname string) (int, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("opening process %d: %w", pid, err)
	}
	// Checked after opening: the fd now pins this very process.
	if !r.ours(pid, ifname) {
		_ = unix.Close(fd)
		return -1, nil
	}
	return fd, nil
}

// stop sends SIGTERM to resolver pid of ifname, kills it if it has not
// exited after resolverGrace, and waits until it is gone. The process is
// held by a pidfd, so a reused pid is never signalled.
func (r *Resolvers) stop(ctx context.Context, pid int, ifname string) error {
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGKILL} {
		fd, err := r.open(pid, ifname)
		if err != nil || fd < 0 {
			return err
		}
		if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			_ = unix.Close(fd)
			return fmt.Errorf("signalling resolver %d: %w", pid, err)
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resolverGrace)
		err = WaitPidfd(wctx, fd) // closes fd
		cancel()
		if err == nil {
			r.waitReaped(pid)
			return nil
		}
		r.log.Warn("resolver did not stop", "ifname", ifname, "pid", pid, "signal", sig.String())
	}
	return fmt.Errorf("resolver %d of %s did not exit", pid, ifname)
}

// waitReaped waits until child pid, if it is one, has been reaped, so that
// no zombie holds its name.
func (r *Resolvers) waitReaped(pid int) {
	r.mu.Lock()
	c := r.children[pid]
	r.mu.Unlock()
	if c != nil {
		<-c.done
	}
}

// Delete stops ifname's resolver, waits until it is gone and removes its
// pid file, log and control socket. It is idempotent.
func (r *Resolvers) Delete(ctx context.Context, ifname string) error {
	if err := checkIfName(ifname); err != nil {
		return err
	}
	if pid := r.PID(ifname); pid != 0 {
		if err := r.stop(ctx, pid, ifname); err != nil {
			return fmt.Errorf("deleting resolver of %s: %w", ifname, err)
		}
		r.log.Info("stopped resolver", "ifname", ifname, "pid", pid)
	}
	errs := []error{RemoveIfExists(r.pidFile(ifname)), RemoveIfExists(r.logFile(ifname))}
	// A socket that still answers belongs to a process that is not ours
	// (a userspace data plane hosts the network's resolver).
	if _, err := socketServer(ctx, r.Socket(ifname)); err != nil {
		errs = append(errs, RemoveIfExists(r.Socket(ifname)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deleting resolver of %s: %w", ifname, err)
	}
	return nil
}
