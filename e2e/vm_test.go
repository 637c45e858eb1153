package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/lab"
)

// guest is a VM booted through `znet workload exec`, driven over its
// serial console (see guestInit).
type guest struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string

	mu  sync.Mutex
	log []string // everything the console printed, for failures
}

// guestCmdline is the kernel command line: quiet, and the NIC's
// configuration from the attach answer as znet.* values.
func guestCmdline(a api.Attachment) string {
	v := map[string]string{
		"ip4": fmt.Sprintf("%s/%d", a.IPv4, a.Subnet.Bits()),
		"ip6": fmt.Sprintf("%s/%d", a.IPv6, a.Subnet6.Bits()),
		"gw4": a.Gateway.String(), "gw6": a.Gateway6.String(),
		"dns": a.DNS[0].String(), "domain": a.Domain, "mtu": strconv.Itoa(a.MTU),
	}
	for _, r := range a.Routes {
		if r.To.Addr().Is4() {
			v["r4"] = r.To.String()
		} else {
			v["r6"] = r.To.String()
		}
	}
	s := "console=ttyS0 quiet loglevel=1 panic=-1"
	for _, k := range []string{"ip4", "ip6", "gw4", "gw6", "r4", "r6", "dns", "domain", "mtu"} {
		if v[k] != "" {
			s += " znet." + k + "=" + v[k]
		}
	}
	return s
}

// bootGuest starts qemu (TCG) through `znet workload exec` on node with the
// tap of workload name as fd 3, and waits until the guest is ready.
func bootGuest(t *testing.T, node lab.Node, network, name string, a api.Attachment, kernel, initrd string) *guest {
	t.Helper()
	qemu := []string{"qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd, "-append", guestCmdline(a),
		"-netdev", "tap,id=n0,fd=3,vhost=off", "-device", "virtio-net-pci,netdev=n0,mac=" + a.MAC}
	args := append([]string{"--socket", node.Socket, "workload", "exec", network, name, "--"}, qemu...)
	cmd := exec.Command(filepath.Join(bin, "znet"), args...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	g := &guest{cmd: cmd, stdin: stdin, lines: make(chan string, 1024)}
	require.NoError(t, cmd.Start())
	go g.read(stdout)
	t.Cleanup(func() { g.stop(t) })
	start := time.Now()
	out, ok := g.until(t, "@@ready", 3*time.Minute)
	require.True(t, ok, "the guest did not come up:\n%s", g.console())
	t.Logf("guest booted in %s (%s)", time.Since(start).Round(100*time.Millisecond), out)
	return g
}

// read forwards the console's lines until it closes.
func (g *guest) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		g.mu.Lock()
		g.log = append(g.log, line)
		g.mu.Unlock()
		g.lines <- line
	}
	close(g.lines)
}

func (g *guest) console() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return strings.Join(g.log, "\n")
}

// until waits for a console line starting with prefix and returns the
// lines before it and the line itself's rest.
func (g *guest) until(t *testing.T, prefix string, d time.Duration) (string, bool) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var out []string
	for {
		select {
		case line, ok := <-g.lines:
			if !ok {
				return strings.Join(out, "\n"), false
			}
			if rest, found := strings.CutPrefix(line, prefix); found {
				return strings.Join(append(out, strings.TrimSpace(rest)), "\n"), true
			}
			out = append(out, line)
		case <-timer.C:
			return strings.Join(out, "\n"), false
		}
	}
}

// run runs a shell line in the guest and returns its output and exit code.
func (g *guest) run(t *testing.T, line string) (string, int) {
	t.Helper()
	_, err := io.WriteString(g.stdin, line+"\n")
	require.NoError(t, err)
	out, ok := g.until(t, "@@rc ", time.Minute)
	require.True(t, ok, "no answer to %q:\n%s", line, out)
	i := strings.LastIndex(out, "\n")
	rc, err := strconv.Atoi(out[i+1:])
	require.NoError(t, err)
	return out[:max(i, 0)], rc
}

// stop asks znet to end qemu (SIGTERM, forwarded) and waits for both.
func (g *guest) stop(t *testing.T) {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		// qemu dies with znet (Pdeathsig).
		_ = g.cmd.Process.Kill()
		<-done
	}
	if t.Failed() {
		t.Logf("guest console:\n%s", g.console())
	}
}

// capture runs tcpdump on the workload's interface in namespace ns until
// the returned function is called, which returns the lines it printed.
func capture(t *testing.T, ns, iface, filter string) func() []string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "tcpdump", "-n", "-l", "-i", iface, filter)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	// tcpdump says "listening on" once its filter is installed.
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "listening on") {
				close(listening)
				once = true
			}
		}
	}()
	var mu sync.Mutex
	var lines []string
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	}()
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("tcpdump did not start")
	}
	return func() []string {
		time.Sleep(300 * time.Millisecond) // the last packets reach the capture
		_ = cmd.Process.Signal(syscall.SIGINT)
		<-read
		_ = cmd.Wait()
		mu.Lock()
		defer mu.Unlock()
		return lines
	}
}

// received parses iputils ping's summary: packets sent and received.
func received(t *testing.T, out string) (int, int) {
	t.Helper()
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`).FindStringSubmatch(out)
	require.NotNil(t, m, "no ping summary in %q", out)
	sent, _ := strconv.Atoi(m[1])
	got, _ := strconv.Atoi(m[2])
	return sent, got
}

// TestVM boots a real VM (qemu TCG, the machine's kernel, a busybox
// initramfs) on node 1 of a 2-node lab through `znet workload exec`, and a
// namespace workload on node 2.
func TestVM(t *testing.T) {
	kernel, modDir, why := guestKernel()
	if why != "" {
		t.Skip("no guest kernel: " + why)
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("no qemu-system-x86_64 (apt-get install qemu-system-x86)")
	}
	initrd := buildInitramfs(t, modDir)
	l := newLab(t, 2)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	deploy(t, l, deployment(t, "vmnet", "10.91.0.0/16", l.Nodes))
	var vm api.Attachment
	znetJSON(t, n1, &vm, "workload", "attach", "vmnet", "vm1", "--tap")
	require.Equal(t, api.KindTap, vm.Kind)
	web := attach(t, n2, "vmnet", "web2")
	g := bootGuest(t, n1, "vmnet", "vm1", vm, kernel, initrd)

	t.Run("the VM and a workload on another node reach each other over IPv4, IPv6 and by name", func(t *testing.T) {
		for _, line := range []string{
			"ping -c 2 -W 2 " + web.ipv4,
			"ping -6 -c 2 -W 2 " + web.ipv6,
			"ping -c 2 -W 2 web2",
			"ping -6 -c 2 -W 2 web2.vmnet.internal",
		} {
			out, rc := g.run(t, line)
			assert.Zero(t, rc, "%s in the VM:\n%s", line, out)
		}
		for _, dst := range []string{vm.IPv4.String(), vm.IPv6.String(), "vm1", "vm1.vmnet.internal"} {
			assert.True(t, pingOK(web.ns, dst), "web2 -> %s", dst)
		}
	})

	t.Run("the VM cannot send from another address or another MAC, as seen at the receiver", func(t *testing.T) {
		// An address of the VM's subnet that is not its own.
		other := vm.Subnet.Addr().As4()
		other[3] = 99
		spoof := netip.AddrFrom4(other).String()
		stop := capture(t, web.ns, "znet0", "icmp and icmp[icmptype] == icmp-echo")
		// Payload sizes tell the attempts apart in the capture: a request
		// of -s N is "length N+8".
		out, rc := g.run(t, "ip addr add "+spoof+"/32 dev eth0 && ping -c 3 -W 1 -s 101 -I "+spoof+" "+web.ipv4)
		assert.NotZero(t, rc, "from another address:\n%s", out)
		_, _ = g.run(t, "ip addr del "+spoof+"/32 dev eth0")
		out, rc = g.run(t, "ip link set eth0 address 02:de:ad:00:00:01 && ping -c 3 -W 1 -s 202 "+web.ipv4)
		assert.NotZero(t, rc, "from another MAC:\n%s", out)
		out, rc = g.run(t, "ip link set eth0 address "+vm.MAC+" && ping -c 3 -W 2 -s 303 "+web.ipv4)
		assert.Zero(t, rc, "from its own MAC and address again:\n%s", out)
		lines := strings.Join(stop(), "\n")
		assert.NotContains(t, lines, spoof+" >", "a packet from another address arrived")
		assert.NotContains(t, lines, "length 210", "a packet from another MAC arrived")
		assert.Contains(t, lines, vm.IPv4.String()+" > "+web.ipv4+": ICMP echo request, id", "the capture sees the VM's own packets")
		assert.Contains(t, lines, "length 311")
	})

	t.Run("a SIGKILLed znetd does not interrupt the VM's traffic", func(t *testing.T) {
		var before []api.Workload
		znetJSON(t, n1, &before, "workload", "list", "vmnet")
		done := make(chan string, 1)
		go func() {
			out, _ := inNS(web.ns, "ping", "-n", "-c", "40", "-i", "0.1", "-W", "1", vm.IPv4.String())
			done <- out
		}()
		time.Sleep(500 * time.Millisecond)
		require.NoError(t, l.KillNode(n1, syscall.SIGKILL))
		time.Sleep(time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, l.StartNode(ctx, n1))
		out := <-done
		sent, got := received(t, out)
		assert.Equal(t, sent, got, "lost pings while znetd died and came back:\n%s", out)
		var after []api.Workload
		znetJSON(t, n1, &after, "workload", "list", "vmnet")
		assert.Equal(t, before, after)
		out, rc := g.run(t, "ping -c 2 -W 2 "+web.ipv4)
		assert.Zero(t, rc, "the VM after the restart:\n%s", out)
	})

	t.Run("detach cuts the VM off", func(t *testing.T) {
		znet(t, n1, "workload", "detach", "vmnet", "vm1")
		assert.False(t, pingOK(web.ns, vm.IPv4.String()))
		out, rc := g.run(t, "ping -c 2 -W 1 "+web.ipv4)
		assert.NotZero(t, rc, "the VM after detach:\n%s", out)
	})
}
