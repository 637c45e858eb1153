package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
)

// contender is one path that traffic is measured over: from namespace cli
// to addr, served from namespace srv.
type contender struct {
	name     string
	cli, srv string
	addr     string
	mtu      int // of the workload's interface (znet's only)
	// pids are the processes that carry its packets (its two ends' data
	// planes); none for the raw veth.
	pids []int
}

// procs are the processes a part started; stop ends them by pid.
type procs struct {
	cmds    []*exec.Cmd
	sockets []string
}

func (p *procs) add(cmd *exec.Cmd) { p.cmds = append(p.cmds, cmd) }

// stop sends SIGTERM to every process, SIGKILL to those still running
// after 5 s, and removes their UAPI sockets.
func (p *procs) stop() {
	for _, c := range p.cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range p.cmds {
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }() // a signalled process exits non-zero
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
	}
	for _, s := range p.sockets {
		_ = os.Remove(s)
	}
	p.cmds, p.sockets = nil, nil
}

// startNiced starts cmd in a session of its own, so an autogroup of its
// own, and gives that autogroup nice nice (when not 0). A process that
// exited before is left as it is.
func startNiced(cmd *exec.Cmd, nice int) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	if nice == 0 {
		return nil
	}
	if err := setAutogroupNice(cmd.Process.Pid, nice); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return err
	}
	return nil
}

// inNSNiced is inNS with the command started by startNiced.
func inNSNiced(ctx context.Context, nice int, ns string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := startNiced(cmd, nice)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// ipIn runs `ip -n ns args...`.
func ipIn(ns string, args ...string) error {
	out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip -n %s %s: %w: %s", ns, strings.Join(args, " "), err, out)
	}
	return nil
}

// inNS runs a command in namespace ns and returns its stdout.
func inNS(ctx context.Context, ns string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// barePair makes two workload namespaces of l joined by a raw veth
// (198.18.200.1 and .2): the raw veth contender. On top of the lab's own
// underlay it makes a tunnel of the wireguard-go library (10.99.1.0/24, run
// by self) and one of Debian's wireguard-go binary (10.99.2.0/24), their
// devices in the namespaces of nodes 1 and 2, so that their UDP takes the
// path znet's does (node 1, the lab's internet, node 2), with the MTU mtu
// of znet's devices. Their traffic, like znet's, starts and ends in
// workload namespaces, each joined to its node by a routed veth (see
// routedWorkload): every workload of a real deployment needs such a hop,
// whichever WireGuard runs, so it is not counted as znet's cost; znet's
// bridge and firewall are. Each runs in a session of its own, as znet's
// data planes do: with the kernel's autogroup scheduling a session is a
// scheduler group, and a contender sharing the bench's group would get a
// smaller share of the CPU. It returns the three contenders.
func barePair(ctx context.Context, l *lab.Lab, self string, mtu int, p *procs) ([]contender, error) {
	a, b := l.Prefix()+"ba", l.Prefix()+"bb"
	for _, ns := range []string{a, b} {
		if _, err := l.AddWorkloadNS(ns); err != nil {
			return nil, err
		}
	}
	steps := [][]string{
		{a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b},
		{a, "addr", "add", "198.18.200.1/24", "dev", "va"},
		{b, "addr", "add", "198.18.200.2/24", "dev", "vb"},
		{a, "link", "set", "va", "up"},
		{b, "link", "set", "vb", "up"},
	}
	for _, s := range steps {
		if err := ipIn(s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	tag := strings.TrimPrefix(l.Name, "zt") // 6 hex digits: unique interface names
	lib := func(ns, ifname string) (*exec.Cmd, error) {
		cmd := exec.Command(self, BareWGCommand, "--ifname", ifname)
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		h, err := namespaces.Open(ns)
		if err != nil {
			return nil, err
		}
		defer func() { _ = h.Close() }()
		return cmd, namespaces.Start(cmd, h)
	}
	debian := func(ns, ifname string) (*exec.Cmd, error) {
		cmd := exec.Command("ip", "netns", "exec", ns, "wireguard-go", "-f", ifname)
		cmd.Env = append(os.Environ(), "LOG_LEVEL=error")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		return cmd, cmd.Start()
	}
	out := []contender{{name: "raw veth", cli: a, srv: b, addr: "198.18.200.2"}}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	for i, c := range []struct {
		name  string
		start func(ns, ifname string) (*exec.Cmd, error)
	}{{bareName, lib}, {"Debian wireguard-go", debian}} {
		ends := [2]wgEnd{
			{ns: n1.NetNS, ifname: fmt.Sprintf("zb%s%da", tag, i), under: n1.Underlay.String(), wl: bareWorkload(l, i, 0)},
			{ns: n2.NetNS, ifname: fmt.Sprintf("zb%s%db", tag, i), under: n2.Underlay.String(), wl: bareWorkload(l, i, 1)},
		}
		for k := range ends {
			ends[k].addr = fmt.Sprintf("10.99.%d.%d", i+1, k+1)
			if err := addRoutedWorkload(l, ends[k].ns, ends[k].wl, mtu); err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			cmd, err := c.start(ends[k].ns, ends[k].ifname)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			p.add(cmd)
			p.sockets = append(p.sockets, uapiPath(ends[k].ifname))
			if err := waitFile(ctx, uapiPath(ends[k].ifname)); err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
		}
		port := bareBasePort + i // outside the lab znetds' range
		if err := wgPair(ctx, l.Dir, ends, port, mtu); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		n := len(p.cmds)
		out = append(out, contender{name: c.name, cli: ends[0].wl.ns, srv: ends[1].wl.ns, addr: ends[1].wl.addr().String(),
			pids: []int{p.cmds[n-2].Process.Pid, p.cmds[n-1].Process.Pid}})
	}
	return out, nil
}

// bareName is the bare wireguard-go library contender, the one znet is
// compared with in pairs.
const bareName = "bare wireguard-go library"

// bareBasePort is the UDP port of the first bare tunnel; znetd hands out
// ports from daemon.DefaultPortMin (51820) up.
const bareBasePort = 61820

// wgEnd is one end of a bare tunnel: device ifname in node namespace ns
// with address addr, reachable on the underlay at under, serving the
// workload wl.
type wgEnd struct {
	ns, ifname, addr, under string
	wl                      workload
}

// wgPair configures the devices of two ends as each other's only peer,
// with the MTU mtu, gives them their addresses and routes each end's
// workload subnet to the other.
func wgPair(ctx context.Context, dir string, ends [2]wgEnd, port, mtu int) error {
	var priv, pub [2]string
	for k := range ends {
		var err error
		if priv[k], pub[k], err = wgKeys(ctx); err != nil {
			return err
		}
	}
	for k, d := range ends {
		peer := ends[1-k]
		conf := fmt.Sprintf("[Interface]\nPrivateKey = %s\nListenPort = %d\n\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32, %s\nEndpoint = %s:%d\n",
			priv[k], port, pub[1-k], peer.addr, peer.wl.subnet, peer.under, port)
		file := filepath.Join(dir, d.ifname+".conf")
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			return err
		}
		_, err := inNS(ctx, d.ns, "wg", "setconf", d.ifname, file)
		_ = os.Remove(file)
		if err != nil {
			return err
		}
		for _, s := range [][]string{
			{"addr", "add", d.addr + "/24", "dev", d.ifname},
			{"link", "set", d.ifname, "mtu", strconv.Itoa(mtu), "up"},
			{"route", "add", peer.wl.subnet.String(), "dev", d.ifname},
		} {
			if err := ipIn(d.ns, s...); err != nil {
				return err
			}
		}
	}
	return nil
}

// wgKeys returns a new private key and its public key.
func wgKeys(ctx context.Context) (priv, pub string, err error) {
	out, err := exec.CommandContext(ctx, "wg", "genkey").Output()
	if err != nil {
		return "", "", fmt.Errorf("wg genkey: %w", err)
	}
	priv = strings.TrimSpace(string(out))
	cmd := exec.CommandContext(ctx, "wg", "pubkey")
	cmd.Stdin = strings.NewReader(priv + "\n")
	out, err = cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("wg pubkey: %w", err)
	}
	return priv, strings.TrimSpace(string(out)), nil
}

// waitFile waits up to 10 s for path to exist.
func waitFile(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New(path + " did not appear")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
