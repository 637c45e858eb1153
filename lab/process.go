package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/znet/znet/namespaces"
)

// StartNode starts node n's znetd in its namespace unless it runs already,
// and waits until its API answers. znetd is forked from a thread inside the
// node's namespace (not through `ip netns exec`, whose private mount
// namespace would hide the namespaces znetd creates).
func (l *Lab) StartNode(ctx context.Context, n Node) error {
	if pid := n.PID(); pid != 0 {
		return waitSocket(ctx, n, pid)
	}
	logf, err := os.OpenFile(n.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = logf.Close() }()
	args := []string{"--node-id", n.ID, "--state-dir", n.StateDir, "--socket", n.Socket,
		"--wireguard", l.Wireguard, "--log-level", "debug"}
	if l.AllowImportedKeys {
		args = append(args, "--allow-imported-keys")
	}
	if n.Metrics != "" {
		args = append(args, "--metrics", n.Metrics)
	}
	cmd := exec.Command(l.Znetd, append(args, l.Args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: the node lives on when the lab's caller exits, as a
	// real node's daemon would.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	ns, err := namespaces.Open(n.NetNS)
	if err != nil {
		return err
	}
	defer func() { _ = ns.Close() }()
	if err := namespaces.Start(cmd, ns); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	// Reap it whenever it exits, so a killed znetd leaves no zombie.
	go cmd.Wait() //nolint:errcheck // the exit status is in the log
	if err := os.WriteFile(n.PIDFile, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		return err
	}
	return waitSocket(ctx, n, pid)
}

// KillNode sends sig to node n's znetd and waits until it is gone and its
// API socket refuses connections: a dying process stops looking like
// znetd before the kernel has closed all its files, and a znetd started in
// between would find the socket still answering.
func (l *Lab) KillNode(n Node, sig syscall.Signal) error {
	pid := n.PID()
	if pid == 0 {
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for isZnetd(pid, n.Socket) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(5 * time.Second)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); socketAnswers(n.Socket); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s: the socket of its killed znetd (pid %d) still answers", n.ID, pid)
		}
	}
	_ = os.Remove(n.PIDFile)
	return nil
}

// socketAnswers reports whether something accepts connections on the Unix
// socket at path.
func socketAnswers(path string) bool {
	c, err := net.Dial("unix", path)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// Down removes everything the lab in dir made: every network on every node
// (through the API while znetd runs), the znetd processes, whatever data
// planes and namespaces of the lab's nodes are still left, the nodes'
// namespaces, the workload namespaces (with their /etc/netns dirs), the
// internet namespace and dir itself. It is idempotent.
func Down(ctx context.Context, dir string) error {
	l, err := Load(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range l.Nodes {
		if err := l.downNode(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", n.ID, err))
		}
	}
	if err := l.removeWorkloadNS(); err != nil {
		errs = append(errs, err)
	}
	if err := namespaces.Delete(l.Internet); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		errs = append(errs, os.RemoveAll(l.Dir))
	}
	return errors.Join(errs...)
}

func (l *Lab) downNode(ctx context.Context, n Node) error {
	var errs []error
	if n.PID() != 0 {
		c := n.Client()
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		nets, err := c.Networks(dctx)
		for _, nw := range nets {
			if err := c.DeleteNetwork(dctx, nw.Name, true); err != nil {
				errs = append(errs, err)
			}
		}
		cancel()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.KillNode(n, syscall.SIGTERM); err != nil {
		errs = append(errs, err)
	}
	// Whatever the daemon could not remove: data planes by their pid files,
	// then this node's namespaces.
	errs = append(errs, killDataplanes(n))
	left, err := namespaces.List(namespaces.NodePrefix(n.ID))
	errs = append(errs, err)
	for _, name := range left {
		errs = append(errs, namespaces.Delete(name))
	}
	errs = append(errs, namespaces.Delete(n.NetNS))
	return errors.Join(errs...)
}

// killDataplanes ends data-plane processes left in node n's run dir (by
// their pid files, each checked to be a data plane before it is signalled).
func killDataplanes(n Node) error {
	files, err := filepath.Glob(filepath.Join(n.StateDir, "run", "*.pid"))
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || !isDataplane(pid) {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 500 && isDataplane(pid); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if isDataplane(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return nil
}

func isDataplane(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), "\x00dataplane\x00")
}
