package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"

	"github.com/znet/znet/api"
)

func workloadCommands() []*command {
	return []*command{
		{
			words: []string{"workload", "attach"}, args: "NETWORK NAME --netns PATH [--ipv4 ADDR] [--ifname IF] | --tap [--mac MAC] [--queues N] [--ipv4 ADDR]", min: 2, max: 2,
			summary: "connect a workload's network namespace, or a VM's NIC (a tap), to a network",
			setup: func(fs *flag.FlagSet) runFunc {
				netns := fs.String("netns", "", "the workload's network namespace `PATH` (/run/netns/NAME or /proc/PID/ns/net)")
				ipv4 := fs.String("ipv4", "", "the IPv4 `ADDR` to give it, inside this node's subnet (default: the next free one)")
				ifname := fs.String("ifname", "", "the interface name `IF` inside the workload (default: znet0, znet1, ...)")
				tap := fs.Bool("tap", false, "make a tap device for a VM instead (see workload exec and guest-config)")
				mac := fs.String("mac", "", "the tap's `MAC` (default: derived from the network and name, 02:...)")
				queues := fs.Int("queues", 1, "the tap's number of queues `N` (more than 1: multi-queue)")
				return func(ctx context.Context, a *app, args []string) error {
					req := api.AttachRequest{Name: args[1], NetNS: *netns, IfName: *ifname, Tap: *tap}
					self := lookup([]string{"workload", "attach"})
					switch {
					case req.Tap && (req.NetNS != "" || req.IfName != ""):
						return usagef(self, "workload attach: --tap takes no --netns or --ifname")
					case !req.Tap && (*mac != "" || *queues != 1):
						return usagef(self, "workload attach: --mac and --queues need --tap")
					case !req.Tap && req.NetNS == "":
						return usagef(self, "workload attach: --netns PATH is required (or --tap for a VM)")
					case req.Tap:
						req.MAC = *mac
						if *queues > 1 {
							req.Queues = *queues
						} else if *queues < 1 {
							return usagef(self, "--queues: %d is not a number of queues (1 or more)", *queues)
						}
					}
					var err error
					if req.IPv4, err = parseIPv4Flag(self, "ipv4", *ipv4); err != nil {
						return err
					}
					return workloadAttach(ctx, a, args[0], req)
				}
			},
		},
		{
			words: []string{"workload", "detach"}, args: "NETWORK NAME", min: 2, max: 2,
			summary: "disconnect a workload and free its addresses",
			setup:   func(*flag.FlagSet) runFunc { return workloadDetach },
		},
		{
			words: []string{"workload", "list"}, args: "NETWORK", min: 1, max: 1,
			summary: "list a network's workloads on this node",
			setup:   func(*flag.FlagSet) runFunc { return workloadList },
		},
	}
}

// parseIPv4Flag parses the IPv4 address of flag --name of cmd; "" gives
// the zero address (none asked for).
func parseIPv4Flag(cmd *command, name, text string) (netip.Addr, error) {
	if text == "" {
		return netip.Addr{}, nil
	}
	addr, err := netip.ParseAddr(text)
	if err != nil || !addr.Is4() {
		return netip.Addr{}, usagef(cmd, "--%s: %q is not an IPv4 address", name, text)
	}
	return addr, nil
}

func workloadAttach(ctx context.Context, a *app, network string, req api.AttachRequest) error {
	att, err := a.client().Attach(ctx, network, req)
	if err != nil {
		return err
	}
	return a.output(att, func(w io.Writer) error {
		tw := newTable(w)
		_, _ = fmt.Fprintf(tw, "workload\t%s in %s\n", req.Name, network)
		_, _ = fmt.Fprintf(tw, "interface\t%s\n", dash(att.Interface))
		_, _ = fmt.Fprintf(tw, "ipv4\t%s\n", addrText(att.IPv4))
		_, _ = fmt.Fprintf(tw, "ipv6\t%s\n", addrText(att.IPv6))
		_, _ = fmt.Fprintf(tw, "gateway\t%s\n", joinValid(att.Gateway, att.Gateway6))
		_, _ = fmt.Fprintf(tw, "dns\t%s\n", joinValid(att.DNS...))
		if att.Kind == api.KindTap {
			_, _ = fmt.Fprintf(tw, "kind\ttap (%d queues) in %s\n", att.Queues, att.NetNS)
			_, _ = fmt.Fprintf(tw, "mac\t%s\n", att.MAC)
			_, _ = fmt.Fprintf(tw, "mtu\t%d\n", att.MTU)
		}
		return tw.Flush()
	})
}

func workloadDetach(ctx context.Context, a *app, args []string) error {
	if err := a.client().Detach(ctx, args[0], args[1]); err != nil {
		return err
	}
	if a.g.json {
		return nil
	}
	_, err := fmt.Fprintf(a.stdout, "workload %s detached from %s\n", args[1], args[0])
	return err
}

func workloadList(ctx context.Context, a *app, args []string) error {
	list, err := a.client().Workloads(ctx, args[0])
	if err != nil {
		return err
	}
	if list == nil {
		list = []api.Workload{}
	}
	return a.output(list, func(w io.Writer) error {
		tw := newTable(w)
		_, _ = fmt.Fprintln(tw, "NAME\tKIND\tIPV4\tIPV6\tMAC\tINTERFACE\tSTATE\tNETNS")
		for _, wl := range list {
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", wl.Name, dash(wl.Kind), addrText(wl.IPv4), addrText(wl.IPv6),
				dash(wl.MAC), dash(wl.Interface), wl.State, wl.NetNS)
		}
		return tw.Flush()
	})
}
