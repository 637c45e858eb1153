package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/znet/znet/api"
	"github.com/znet/znet/deploy"
	"github.com/znet/znet/lab"
)

// What `znet lab up` builds by default.
const (
	defaultLabDir   = "/tmp/znet-lab"
	defaultLabNodes = 3
	demoNetwork     = "demo"
	demoRange       = "10.30.0.0/16"
	// hiddenFrom is the smallest lab whose last node is hidden behind NAT.
	hiddenFrom = 3
)

func labCommands() []*command {
	return []*command{
		{
			words: []string{"lab", "up"}, args: "[--nodes N] [--dir DIR] [--wireguard MODE] [--znetd PATH] [--name NAME] [--underlay-mtu N]", min: 0, max: 0,
			summary: "build a simulated grid on this machine, deploy network demo over it and attach a workload per node",
			setup: func(fs *flag.FlagSet) runFunc {
				var c labUpConfig
				fs.IntVar(&c.nodes, "nodes", 0, fmt.Sprintf("how many nodes, `N` (default %d, or as many as the lab has)", defaultLabNodes))
				fs.StringVar(&c.dir, "dir", defaultLabDir, "the lab's `DIR`: its description, each node's state, socket and log (default "+defaultLabDir+")")
				fs.StringVar(&c.wireguard, "wireguard", "auto", "the nodes' WireGuard backend, `MODE` auto, kernel or userspace (default auto)")
				fs.StringVar(&c.znetd, "znetd", "", "the znetd binary, `PATH` (default: znetd next to this znet)")
				fs.StringVar(&c.name, "name", "", "`NAME` that prefixes node ids and namespaces (default: the lab's, else none: node1... and lab-*)")
				fs.IntVar(&c.underlayMTU, "underlay-mtu", 0, "the simulated internet's MTU, `N` (default: the lab's, else 1500); 1460 plays a cloud VPC")
				return func(ctx context.Context, a *app, _ []string) error { return labUp(ctx, a, c) }
			},
		},
		{
			words: []string{"lab", "down"}, args: "[--dir DIR]", min: 0, max: 0,
			summary: "remove everything a lab made: networks, znetd processes, namespaces, links, its dir",
			setup: func(fs *flag.FlagSet) runFunc {
				dir := fs.String("dir", defaultLabDir, "the lab's `DIR` (default "+defaultLabDir+")")
				return func(ctx context.Context, a *app, _ []string) error { return labDown(ctx, a, *dir) }
			},
		},
		{
			words: []string{"lab", "status"}, args: "[--dir DIR]", min: 0, max: 0,
			summary: "a lab's nodes, whether their znetd runs, and the status of their networks",
			setup: func(fs *flag.FlagSet) runFunc {
				dir := fs.String("dir", defaultLabDir, "the lab's `DIR` (default "+defaultLabDir+")")
				return func(ctx context.Context, a *app, _ []string) error { return labStatus(ctx, a, *dir) }
			},
		},
	}
}

type labUpConfig struct {
	nodes, underlayMTU          int
	dir, wireguard, znetd, name string
}

// labWorkload is one workload `lab up` attached.
type labWorkload struct {
	Node  string     `json:"node"`
	Name  string     `json:"name"`
	NetNS string     `json:"netns"`
	IPv4  netip.Addr `json:"ipv4"`
	IPv6  netip.Addr `json:"ipv6"`
}

// labUpResult is what `lab up --json` prints.
type labUpResult struct {
	Lab       *lab.Lab       `json:"lab"`
	Deploy    *deploy.Result `json:"deploy"`
	Workloads []labWorkload  `json:"workloads"`
}

func labUp(ctx context.Context, a *app, c labUpConfig) error {
	znetd, err := znetdBinary(c.znetd)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(c.dir)
	if err != nil {
		return err
	}
	if old, err := lab.Load(dir); err == nil {
		if c.name == "" {
			c.name = old.Name
		}
		if c.nodes == 0 {
			c.nodes = len(old.Nodes)
		}
		if c.underlayMTU == 0 {
			c.underlayMTU = old.UnderlayMTU
		}
	}
	if c.nodes == 0 {
		c.nodes = defaultLabNodes
	}
	l, err := lab.Up(ctx, lab.Config{Name: c.name, Dir: dir, Nodes: c.nodes, Znetd: znetd, Wireguard: c.wireguard, UnderlayMTU: c.underlayMTU})
	if err != nil {
		return labErr("building the lab", err)
	}
	res, err := deploy.Run(ctx, demoDeployment(l), deploy.Options{StateDir: filepath.Join(l.Dir, "deploy")})
	if err != nil {
		return labErr("deploying "+demoNetwork, err)
	}
	if failed := res.Failed(); len(failed) > 0 {
		for _, n := range failed {
			_, _ = fmt.Fprintf(a.stderr, "znet: node %s: %v\n", n.ID, n.Err)
		}
		return fmt.Errorf("lab up: %s failed on %d of %d nodes; see the znetd logs in %s/<node>/znetd.log", demoNetwork, len(failed), len(res.Nodes), l.Dir)
	}
	wls, err := attachWorkloads(ctx, l)
	if err != nil {
		return labErr("attaching the workloads", err)
	}
	out := labUpResult{Lab: l, Deploy: res, Workloads: wls}
	return a.output(out, func(w io.Writer) error { return writeLabUp(w, out) })
}

// labErr puts what failed in front of err, and keeps a timeout from being
// reported as one daemon's silence.
func labErr(doing string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("lab: %s: not done within --timeout (%v)", doing, err)
	}
	return fmt.Errorf("lab: %s: %w", doing, err)
}

// znetdBinary returns the znetd to run: path, or znetd next to this znet.
func znetdBinary(path string) (string, error) {
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("finding znetd: %w (pass --znetd PATH)", err)
		}
		path = filepath.Join(filepath.Dir(exe), "znetd")
	}
	st, err := os.Stat(path)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("no znetd binary at %s (run `make build`, or pass --znetd PATH)", path)
	}
	return filepath.Abs(path)
}

// demoDeployment is network demo over every node of l: each reachable at
// its underlay address, the last one hidden when the lab has enough nodes.
func demoDeployment(l *lab.Lab) *deploy.Deployment {
	d := &deploy.Deployment{Name: demoNetwork, IPRange: netip.MustParsePrefix(demoRange)}
	for i, n := range l.Nodes {
		ref := deploy.NodeRef{ID: n.ID, API: "unix://" + n.Socket, EndpointHost: n.Underlay.String()}
		if len(l.Nodes) >= hiddenFrom && i == len(l.Nodes)-1 {
			ref.EndpointHost, ref.Hidden = "", true
		}
		d.Nodes = append(d.Nodes, ref)
	}
	return d
}

// attachWorkloads makes workload namespace <prefix>w<i> for node i and
// attaches it to demo as w<i>; one attached already is left alone.
func attachWorkloads(ctx context.Context, l *lab.Lab) ([]labWorkload, error) {
	var out []labWorkload
	for i, n := range l.Nodes {
		ns := l.WorkloadNS(i + 1)
		path, err := l.AddWorkloadNS(ns)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("w%d", i+1)
		wl := labWorkload{Node: n.ID, Name: name, NetNS: ns}
		c := n.Client()
		list, err := c.Workloads(ctx, demoNetwork)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.ID, err)
		}
		attached := false
		for _, have := range list {
			if have.Name != name {
				continue
			}
			if have.State == api.StateAttached && have.NetNS == path {
				wl.IPv4, wl.IPv6, attached = have.IPv4, have.IPv6, true
			} else if err := c.Detach(ctx, demoNetwork, name); err != nil {
				return nil, fmt.Errorf("node %s: re-attaching %s: %w", n.ID, name, err)
			}
		}
		if !attached {
			att, err := c.Attach(ctx, demoNetwork, api.AttachRequest{Name: name, NetNS: path})
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", n.ID, err)
			}
			wl.IPv4, wl.IPv6 = att.IPv4, att.IPv6
		}
		out = append(out, wl)
	}
	return out, nil
}

// writeLabUp prints what the lab is and the commands to try on it.
func writeLabUp(w io.Writer, r labUpResult) error {
	l, res := r.Lab, r.Deploy
	_, _ = fmt.Fprintf(w, "lab in %s: %d nodes; network %s %s generation %d\n\n", l.Dir, len(l.Nodes), res.Network, demoRange, res.Generation)
	tw := newTable(w)
	_, _ = fmt.Fprintln(tw, "NODE\tUNDERLAY\tENDPOINT\tSUBNET\tWORKLOAD\tNAMESPACE\tIPV4\tIPV6")
	for i, n := range l.Nodes {
		ep := "hidden"
		if m, ok := res.Spec.Node(n.ID); ok && m.Endpoint != "" {
			ep = m.Endpoint
		}
		wl := r.Workloads[i]
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.Underlay, ep, prefixText(res.Nodes[i].Subnet),
			wl.Name, wl.NetNS, addrText(wl.IPv4), addrText(wl.IPv6))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, _ = fmt.Fprintln(w, "\nTry:")
	tw = newTable(w)
	wls := r.Workloads
	if len(wls) > 1 {
		a, b := wls[0], wls[1]
		_, _ = fmt.Fprintf(tw, "  ip netns exec %s ping -c 3 %s\t# %s (%s) -> %s (%s)\n", a.NetNS, addrText(b.IPv4), a.Name, a.Node, b.Name, b.Node)
		_, _ = fmt.Fprintf(tw, "  ip netns exec %s ping -c 3 %s\t# the same over IPv6\n", a.NetNS, addrText(b.IPv6))
	}
	if len(wls) > 2 {
		h, b := wls[len(wls)-1], wls[1]
		_, _ = fmt.Fprintf(tw, "  ip netns exec %s ping -c 3 %s\t# from the hidden node %s, through the mesh\n", h.NetNS, addrText(b.IPv4), h.Node)
	}
	if st := res.Nodes[0].Status; st != nil {
		_, _ = fmt.Fprintf(tw, "  ip netns exec %s wg show %s\t# %s's WireGuard device\n", st.Namespace, st.Interface, l.Nodes[0].ID)
	}
	self := selfName()
	_, _ = fmt.Fprintf(tw, "  %s --socket %s status %s\t# %s's view of the mesh\n", self, l.Nodes[0].Socket, demoNetwork, l.Nodes[0].ID)
	_, _ = fmt.Fprintf(tw, "  %s lab status --dir %s\t# every node\n", self, l.Dir)
	_, _ = fmt.Fprintf(tw, "  %s lab down --dir %s\t# remove it all\n", self, l.Dir)
	return tw.Flush()
}

// selfName is how to run this znet again: the path it was started by.
func selfName() string {
	if strings.Contains(os.Args[0], "/") {
		return os.Args[0]
	}
	return "znet"
}

func labDown(ctx context.Context, a *app, dir string) error {
	_, err := lab.Load(dir)
	existed := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("lab down: %w", err)
	}
	if err := lab.Down(ctx, dir); err != nil {
		return labErr("taking it down", err)
	}
	if a.g.json {
		return nil
	}
	if !existed {
		_, err := fmt.Fprintf(a.stdout, "no lab in %s; nothing to do\n", dir)
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "lab in %s removed\n", dir)
	return err
}

// labNodeStatus is one node of `lab status --json`.
type labNodeStatus struct {
	ID       string              `json:"id"`
	NetNS    string              `json:"netns"`
	Underlay netip.Addr          `json:"underlay"`
	Socket   string              `json:"socket"`
	PID      int                 `json:"pid,omitempty"`
	Up       bool                `json:"up"`
	Networks []api.NetworkStatus `json:"networks,omitempty"`
	Error    string              `json:"error,omitempty"`
}

func labStatus(ctx context.Context, a *app, dir string) error {
	l, err := lab.Load(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no lab in %s (`znet lab up --dir %s` makes one)", dir, dir)
	}
	if err != nil {
		return err
	}
	var nodes []labNodeStatus
	for _, n := range l.Nodes {
		ns := labNodeStatus{ID: n.ID, NetNS: n.NetNS, Underlay: n.Underlay, Socket: n.Socket, PID: n.PID()}
		ns.Up = ns.PID != 0
		if ns.Up {
			if ns.Networks, err = n.Client().Status(ctx, ""); err != nil {
				ns.Error = err.Error()
			}
		}
		nodes = append(nodes, ns)
	}
	return a.output(nodes, func(w io.Writer) error {
		_, _ = fmt.Fprintf(w, "lab in %s: %d nodes, namespaces %s*\n\n", l.Dir, len(l.Nodes), l.Prefix())
		tw := newTable(w)
		_, _ = fmt.Fprintln(tw, "NODE\tUNDERLAY\tNAMESPACE\tPID\tZNETD")
		for _, n := range nodes {
			state := "down"
			if n.Up {
				state = "up"
			}
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.ID, addrText(n.Underlay), n.NetNS, itoa(n.PID), state)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		now := a.now()
		for _, n := range nodes {
			if !n.Up {
				continue
			}
			_, _ = fmt.Fprintf(w, "\n== %s\n", n.ID)
			if n.Error != "" {
				_, _ = fmt.Fprintf(w, "status: %s\n", n.Error)
				continue
			}
			if len(n.Networks) == 0 {
				_, _ = fmt.Fprintln(w, "no networks")
			}
			for i, st := range n.Networks {
				if i > 0 {
					_, _ = fmt.Fprintln(w)
				}
				if err := writeStatus(w, st, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
