package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/znet/znet/deploy"
)

// defaultDeployDir is where `znet deploy` remembers each network's nodes.
const defaultDeployDir = "/var/lib/znet/deploy"

func deployCommands() []*command {
	return []*command{
		{
			words: []string{"deploy"}, args: "-f DEPLOYMENT.json [--state-dir DIR] [--no-wait] [--forget NODE]...", min: 0, max: 0,
			summary: "reserve on every node, plan subnets, apply everywhere and wait for the mesh (--timeout bounds the wait)",
			setup: func(fs *flag.FlagSet) runFunc {
				file := fs.String("f", "", "read the deployment from `FILE` (- for stdin)")
				stateDir := fs.String("state-dir", defaultDeployDir, "where deploy remembers each network's node APIs, `DIR` (default "+defaultDeployDir+")")
				noWait := fs.Bool("no-wait", false, "do not wait for the handshakes; show each node's status at once")
				var forget []string
				fs.Func("forget", "drop `NODE`, left out of the file and gone for good, from the record without contacting it (repeatable)", func(id string) error {
					forget = append(forget, id)
					return nil
				})
				return func(ctx context.Context, a *app, _ []string) error {
					if *file == "" {
						return usagef(lookup([]string{"deploy"}), "deploy: -f FILE is required")
					}
					d, err := a.readDeployment(*file)
					if err != nil {
						return err
					}
					return a.deploy(ctx, d, deploy.Options{StateDir: *stateDir, NoWait: *noWait, Forget: forget})
				}
			},
		},
	}
}

// readDeployment reads and decodes a deployment file ("-" for stdin).
func (a *app) readDeployment(file string) (*deploy.Deployment, error) {
	if file != "-" {
		return deploy.Load(file)
	}
	data, err := io.ReadAll(io.LimitReader(a.stdin, deploy.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the deployment from stdin: %w", err)
	}
	return deploy.Decode(data)
}

// deploy runs a deployment, prints its result and names every failed node
// on stderr.
func (a *app) deploy(ctx context.Context, d *deploy.Deployment, opts deploy.Options) error {
	res, err := deploy.Run(ctx, d, opts)
	if res == nil {
		return err
	}
	if perr := a.output(res, func(w io.Writer) error { return writeDeploy(w, res, a.now()) }); perr != nil {
		return perr
	}
	failed := res.Failed()
	for _, n := range failed {
		_, _ = fmt.Fprintf(a.stderr, "znet: node %s: %v\n", n.ID, n.Err)
	}
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("deploy of %s: %d of %d nodes failed", res.Network, len(failed), len(res.Nodes))
	}
	return nil
}

// writeDeploy prints one table per node: its generation and subnet, then
// its peers.
func writeDeploy(w io.Writer, res *deploy.Result, now time.Time) error {
	if res.Spec != nil {
		_, _ = fmt.Fprintf(w, "network %s  generation %d  %s  %s\n", res.Network, res.Generation,
			prefixText(res.Spec.IPRange), prefixText(res.Spec.IPv6Range))
	} else {
		_, _ = fmt.Fprintf(w, "network %s: nothing applied (no node was ready)\n", res.Network)
	}
	for _, n := range res.Nodes {
		_, _ = fmt.Fprintln(w)
		switch {
		case n.Forgotten:
			_, _ = fmt.Fprintf(w, "node %s  forgotten: not contacted; the network stays on it if it comes back\n", n.ID)
			continue
		case n.Removed && n.Err == nil:
			_, _ = fmt.Fprintf(w, "node %s  removed from the network\n", n.ID)
			continue
		case n.Removed:
			_, _ = fmt.Fprintf(w, "node %s  left out of the file  FAILED: %v\n", n.ID, n.Err)
			continue
		}
		gen := "-"
		subnet := prefixText(n.Subnet)
		if st := n.Status; st != nil {
			gen = fmt.Sprint(st.Generation)
			subnet = joinValid(n.Subnet, st.Subnet6)
		}
		_, _ = fmt.Fprintf(w, "node %s  generation %s  subnet %s\n", n.ID, gen, subnet)
		if n.Err != nil {
			_, _ = fmt.Fprintf(w, "  FAILED: %v\n", n.Err)
		}
		if n.Status == nil {
			continue
		}
		if len(n.Status.Peers) == 0 {
			_, _ = fmt.Fprintln(w, "  no peers")
			continue
		}
		tw := newTable(w)
		_, _ = fmt.Fprintln(tw, "  PEER\tENDPOINT\tALLOWED IPS\tHANDSHAKE\tRX\tTX")
		for _, p := range n.Status.Peers {
			_, _ = fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", dash(p.Name), dash(p.Endpoint), joinValid(p.AllowedIPs...),
				ageText(now, p.LastHandshake), bytesText(p.RxBytes), bytesText(p.TxBytes))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
