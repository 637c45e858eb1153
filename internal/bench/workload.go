package bench

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"

	"github.com/znet/znet/lab"
)

// workload is a namespace a bare contender's traffic starts or ends in,
// joined to its node's namespace by a veth (link, the node's end) on
// subnet: the workload has the subnet's .2, the node's end its .1.
type workload struct {
	ns, link string
	subnet   netip.Prefix
}

// addr is the workload's address.
func (w workload) addr() netip.Addr { return w.subnet.Addr().Next().Next() }

// gateway is the address of the node's end of the veth.
func (w workload) gateway() netip.Addr { return w.subnet.Addr().Next() }

// bareWorkload returns the workload of side 0 or 1 of bare tunnel i: a
// namespace of l and a /24 of 10.99.16.0/20, apart from the tunnels'
// own 10.99.1.0/24 and 10.99.2.0/24.
func bareWorkload(l *lab.Lab, i, side int) workload {
	name := fmt.Sprintf("bw%d%c", i, 'a'+side)
	return workload{
		ns:     l.Prefix() + name,
		link:   name,
		subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, byte(16 + 2*i + side), 0}), 24),
	}
}

// addRoutedWorkload makes w's namespace in l (so that l.Down removes it)
// and joins it to node.
func addRoutedWorkload(l *lab.Lab, node string, w workload, mtu int) error {
	if _, err := l.AddWorkloadNS(w.ns); err != nil {
		return err
	}
	return routedWorkload(node, w, mtu)
}

// routedWorkload joins workload w to namespace node with a veth of MTU
// mtu, the workload's end (eth0) with a default route via the node's end,
// and turns forwarding on in node. It is the least a workload in a
// namespace of its own needs to reach a tunnel device in another: no
// bridge, no firewall and no connection tracking (a lab node's namespace
// has no rules that would load it). znet's workloads cross the same kind
// of veth, then the network's bridge and firewall.
func routedWorkload(node string, w workload, mtu int) error {
	m := strconv.Itoa(mtu)
	gw := w.gateway().String()
	steps := [][]string{
		{w.ns, "link", "add", "eth0", "mtu", m, "type", "veth", "peer", "name", w.link, "mtu", m, "netns", node},
		{w.ns, "addr", "add", w.addr().String() + "/24", "dev", "eth0"},
		{node, "addr", "add", gw + "/24", "dev", w.link},
		{w.ns, "link", "set", "eth0", "up"},
		{node, "link", "set", w.link, "up"},
		{w.ns, "route", "add", "default", "via", gw},
	}
	for _, s := range steps {
		if err := ipIn(s[0], s[1:]...); err != nil {
			return fmt.Errorf("workload %s: %w", w.ns, err)
		}
	}
	out, err := exec.Command("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput()
	if err != nil {
		return fmt.Errorf("forwarding in %s: %w: %s", node, err, strings.TrimSpace(string(out)))
	}
	return nil
}
