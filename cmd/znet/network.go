package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/znet/znet/api"
)

func networkCommands() []*command {
	return []*command{
		{
			words: []string{"network", "reserve"}, args: "NAME [--port N]", min: 1, max: 1,
			summary: "make this node's key and UDP port for a network (idempotent)",
			setup: func(fs *flag.FlagSet) runFunc {
				port := fs.Int("port", 0, "use (or move the reservation to) UDP port `N`")
				return func(ctx context.Context, a *app, args []string) error {
					return networkReserve(ctx, a, args, *port)
				}
			},
		},
		{
			words: []string{"network", "apply"}, args: "-f SPEC.json", min: 0, max: 0,
			summary: "create or update a network from a spec file (- for stdin)",
			setup: func(fs *flag.FlagSet) runFunc {
				file := fs.String("f", "", "read the spec from `FILE` (- for stdin)")
				return func(ctx context.Context, a *app, _ []string) error {
					return networkApply(ctx, a, *file)
				}
			},
		},
		{
			words: []string{"network", "list"}, min: 0, max: 0,
			summary: "list this node's networks",
			setup:   func(*flag.FlagSet) runFunc { return networkList },
		},
		{
			words: []string{"network", "show"}, args: "NAME", min: 1, max: 1,
			summary: "show a network's applied spec and status",
			setup:   func(*flag.FlagSet) runFunc { return networkShow },
		},
		{
			words: []string{"network", "delete"}, args: "NAME [--force]", min: 1, max: 1,
			summary: "remove a network from this node",
			setup: func(fs *flag.FlagSet) runFunc {
				force := fs.Bool("force", false, "delete even with workloads attached (they lose the network)")
				return func(ctx context.Context, a *app, args []string) error {
					return networkDelete(ctx, a, args[0], *force)
				}
			},
		},
	}
}

func networkReserve(ctx context.Context, a *app, args []string, port int) error {
	var (
		res api.Reservation
		err error
	)
	if port != 0 {
		res, err = a.client().ReservePort(ctx, args[0], port)
	} else {
		res, err = a.client().Reserve(ctx, args[0])
	}
	if err != nil {
		return err
	}
	return a.output(res, func(w io.Writer) error {
		tw := newTable(w)
		_, _ = fmt.Fprintf(tw, "network\t%s\n", args[0])
		_, _ = fmt.Fprintf(tw, "node\t%s\n", res.NodeID)
		_, _ = fmt.Fprintf(tw, "public key\t%s\n", res.PublicKey)
		_, _ = fmt.Fprintf(tw, "listen port\t%d\n", res.ListenPort)
		return tw.Flush()
	})
}

func networkApply(ctx context.Context, a *app, file string) error {
	if file == "" {
		return usagef(lookup([]string{"network", "apply"}), "network apply: -f FILE is required")
	}
	data, err := a.readSpec(file)
	if err != nil {
		return err
	}
	res, err := a.client().ApplyRaw(ctx, data)
	if err != nil {
		return err
	}
	return a.output(res, func(w io.Writer) error {
		if res.Changed {
			_, err := fmt.Fprintf(w, "network %s: generation %d applied\n", res.Name, res.Generation)
			return err
		}
		_, err := fmt.Fprintf(w, "network %s: generation %d was applied already; nothing changed\n", res.Name, res.Generation)
		return err
	})
}

// readSpec reads a spec file ("-" for stdin) as is, up to one byte past
// the API's limit so that the daemon reports a file that is too large.
func (a *app) readSpec(file string) ([]byte, error) {
	r := a.stdin
	name := "stdin"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("reading the spec: %w", err)
		}
		defer func() { _ = f.Close() }()
		r, name = f, file
	}
	data, err := io.ReadAll(io.LimitReader(r, api.MaxBodySize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the spec from %s: %w", name, err)
	}
	return data, nil
}

func networkList(ctx context.Context, a *app, _ []string) error {
	list, err := a.client().Networks(ctx)
	if err != nil {
		return err
	}
	if list == nil {
		list = []api.NetworkSummary{}
	}
	return a.output(list, func(w io.Writer) error {
		tw := newTable(w)
		_, _ = fmt.Fprintln(tw, "NAME\tGENERATION\tSTATE\tIP RANGE\tSUBNET\tNODES\tWORKLOADS")
		for _, n := range list {
			_, _ = fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%d\n", n.Name, n.Generation, n.State,
				prefixText(n.IPRange), prefixText(n.Subnet), n.Nodes, n.Workloads)
		}
		return tw.Flush()
	})
}

func networkShow(ctx context.Context, a *app, args []string) error {
	d, err := a.client().Network(ctx, args[0])
	if err != nil {
		return err
	}
	return a.output(d, func(w io.Writer) error {
		if err := writeSpec(w, args[0], d); err != nil {
			return err
		}
		_, _ = fmt.Fprintln(w)
		return writeStatus(w, d.Status, a.now())
	})
}

// writeSpec prints the applied spec of a network.
func writeSpec(w io.Writer, name string, d api.NetworkDetail) error {
	s := d.Spec
	if s == nil {
		_, err := fmt.Fprintf(w, "spec %s: none applied yet (reserved only)\n", name)
		return err
	}
	_, _ = fmt.Fprintf(w, "spec %s  generation %d\n", s.Name, s.Generation)
	tw := newTable(w)
	_, _ = fmt.Fprintf(tw, "  ip range\t%s\n", prefixText(s.IPRange))
	_, _ = fmt.Fprintf(tw, "  ipv6 range\t%s\n", prefixText(s.IPv6Range))
	_, _ = fmt.Fprintf(tw, "  mtu\t%d\n", s.MTU)
	if err := tw.Flush(); err != nil {
		return err
	}
	_, _ = fmt.Fprintln(w)
	tw = newTable(w)
	_, _ = fmt.Fprintln(tw, "  NODE\tSUBNET\tENDPOINT\tPUBLIC KEY")
	for _, n := range s.Nodes {
		_, _ = fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n.ID, prefixText(n.Subnet), dash(n.Endpoint), dash(n.PublicKey))
	}
	return tw.Flush()
}

func networkDelete(ctx context.Context, a *app, name string, force bool) error {
	if err := a.client().DeleteNetwork(ctx, name, force); err != nil {
		return err
	}
	if a.g.json {
		return nil
	}
	_, err := fmt.Fprintf(a.stdout, "network %s deleted\n", name)
	return err
}

// itoa formats a port or pid, "-" for zero.
func itoa(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}
