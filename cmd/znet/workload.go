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
			words: []string{"workload", "attach"}, args: "NETWORK NAME --netns PATH [--ipv4 ADDR] [--ifname IF]", min: 2, max: 2,
			summary: "connect a workload's network namespace to a network",
			setup: func(fs *flag.FlagSet) runFunc {
				netns := fs.String("netns", "", "the workload's network namespace `PATH` (/run/netns/NAME or /proc/PID/ns/net)")
				ipv4 := fs.String("ipv4", "", "the IPv4 `ADDR` to give it, inside this node's subnet (default: the next free one)")
				ifname := fs.String("ifname", "", "the interface name `IF` inside the workload (default: znet0, znet1, ...)")
				return func(ctx context.Context, a *app, args []string) error {
					req := api.AttachRequest{Name: args[1], NetNS: *netns, IfName: *ifname}
					self := lookup([]string{"workload", "attach"})
					if req.NetNS == "" {
						return usagef(self, "workload attach: --netns PATH is required")
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
		_, _ = fmt.Fprintln(tw, "NAME\tIPV4\tIPV6\tINTERFACE\tSTATE\tNETNS")
		for _, wl := range list {
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", wl.Name, addrText(wl.IPv4), addrText(wl.IPv6),
				dash(wl.Interface), wl.State, wl.NetNS)
		}
		return tw.Flush()
	})
}
