package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/znet/znet/api"
	"github.com/znet/znet/zos"
)

func zosCommands() []*command {
	return []*command{
		{
			words: []string{"zos", "apply"}, args: "--twin ID -f WORKLOAD.json", min: 0, max: 0,
			summary: "create or update the network of a zos network workload (- for stdin)",
			setup: func(fs *flag.FlagSet) runFunc {
				twin := fs.String("twin", "", "the owner's twin `ID`")
				file := fs.String("f", "", "read the workload from `FILE` (- for stdin)")
				return func(ctx context.Context, a *app, _ []string) error {
					return zosApply(ctx, a, *twin, *file)
				}
			},
		},
		{
			words: []string{"zos", "list"}, min: 0, max: 0,
			summary: "list the networks realizing zos workloads, with their twin and name",
			setup:   func(*flag.FlagSet) runFunc { return zosList },
		},
		{
			words: []string{"zos", "attach"}, args: "--twin ID NETWORK NAME (--tap [--mac MAC] | --netns PATH [--ifname IF]) [--ip ADDR]", min: 2, max: 2,
			summary: "connect a zmachine's interface {network, ip} to the network of zos workload NETWORK: a VM's tap, or a namespace",
			setup: func(fs *flag.FlagSet) runFunc {
				twin := fs.String("twin", "", "the owner's twin `ID`")
				netns := fs.String("netns", "", "the workload's network namespace `PATH` (/run/netns/NAME or /proc/PID/ns/net)")
				ip := fs.String("ip", "", "the interface's IPv4 `ADDR`, inside this node's subnet (default: the next free one)")
				ifname := fs.String("ifname", "", "the interface name `IF` inside the workload (default: znet0, znet1, ...)")
				tap := fs.Bool("tap", false, "make the zmachine's NIC, a tap (see workload exec and guest-config)")
				mac := fs.String("mac", "", "the tap's `MAC` (default: derived from the network and name)")
				return func(ctx context.Context, a *app, args []string) error {
					req := api.AttachRequest{Name: args[1], NetNS: *netns, IfName: *ifname, Tap: *tap, MAC: *mac}
					return zosAttach(ctx, a, *twin, args, req, *ip)
				}
			},
		},
		{
			words: []string{"zos", "detach"}, args: "--twin ID NETWORK NAME", min: 2, max: 2,
			summary: "disconnect a workload from the network of zos workload NETWORK",
			setup: func(fs *flag.FlagSet) runFunc {
				twin := fs.String("twin", "", "the owner's twin `ID`")
				return func(ctx context.Context, a *app, args []string) error {
					t, err := parseTwin([]string{"zos", "detach"}, *twin)
					if err != nil {
						return err
					}
					return workloadDetach(ctx, a, []string{zos.NetworkName(t, args[0]), args[1]})
				}
			},
		},
		{
			words: []string{"zos", "delete"}, args: "--twin ID NAME", min: 1, max: 1,
			summary: "remove the network of a zos workload, with everything attached",
			setup: func(fs *flag.FlagSet) runFunc {
				twin := fs.String("twin", "", "the owner's twin `ID`")
				return func(ctx context.Context, a *app, args []string) error {
					return zosDelete(ctx, a, *twin, args[0])
				}
			},
		},
	}
}

// parseTwin checks --twin of the command words.
func parseTwin(words []string, text string) (uint32, error) {
	self := lookup(words)
	if text == "" {
		return 0, usagef(self, "%s: --twin ID is required", self.name())
	}
	v, err := strconv.ParseUint(text, 10, 32)
	if err != nil || v == 0 {
		return 0, usagef(self, "--twin: %q is not a twin id (1-%d)", text, uint32(1<<32-1))
	}
	return uint32(v), nil
}

func zosApply(ctx context.Context, a *app, twinText, file string) error {
	twin, err := parseTwin([]string{"zos", "apply"}, twinText)
	if err != nil {
		return err
	}
	if file == "" {
		return usagef(lookup([]string{"zos", "apply"}), "zos apply: -f FILE is required")
	}
	data, err := a.readSpec(file)
	if err != nil {
		return err
	}
	res, err := a.client().ZosApplyRaw(ctx, twin, data)
	if err != nil {
		return err
	}
	return a.output(res, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "zos workload %q of twin %d, version %d: network %s\n", res.Name, res.Twin, res.Version, res.Network)
		return err
	})
}

func zosList(ctx context.Context, a *app, _ []string) error {
	list, err := a.client().ZosNetworks(ctx)
	if err != nil {
		return err
	}
	return a.output(list, func(w io.Writer) error {
		tw := newTable(w)
		_, _ = fmt.Fprintln(tw, "TWIN\tNAME\tVERSION\tNETWORK")
		for _, n := range list {
			_, _ = fmt.Fprintf(tw, "%d\t%s\t%d\t%s\n", n.Twin, strconv.Quote(n.Name), n.Version, n.Network)
		}
		return tw.Flush()
	})
}

func zosDelete(ctx context.Context, a *app, twinText, name string) error {
	twin, err := parseTwin([]string{"zos", "delete"}, twinText)
	if err != nil {
		return err
	}
	return a.client().ZosDelete(ctx, twin, name)
}

// zosAttach attaches a workload with the address a zmachine's interface
// asks for: the VM's tap (--tap), or a namespace.
func zosAttach(ctx context.Context, a *app, twinText string, args []string, req api.AttachRequest, ip string) error {
	self := lookup([]string{"zos", "attach"})
	twin, err := parseTwin(self.words, twinText)
	if err != nil {
		return err
	}
	switch {
	case req.Tap && (req.NetNS != "" || req.IfName != ""):
		return usagef(self, "zos attach: --tap takes no --netns or --ifname")
	case !req.Tap && req.MAC != "":
		return usagef(self, "zos attach: --mac needs --tap")
	case !req.Tap && req.NetNS == "":
		return usagef(self, "zos attach: --netns PATH (or --tap for a VM) is required")
	}
	if req.IPv4, err = parseIPv4Flag(self, "ip", ip); err != nil {
		return err
	}
	return workloadAttach(ctx, a, zos.NetworkName(twin, args[0]), req)
}
