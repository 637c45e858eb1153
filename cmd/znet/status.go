package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/znet/znet/api"
)

func statusCommands() []*command {
	return []*command{
		{
			words: []string{"status"}, args: "[NETWORK]", min: 0, max: 1,
			summary: "live state of one network or all: peers, handshakes, traffic, problems",
			setup:   func(*flag.FlagSet) runFunc { return status },
		},
	}
}

func status(ctx context.Context, a *app, args []string) error {
	network := ""
	if len(args) > 0 {
		network = args[0]
	}
	list, err := a.client().Status(ctx, network)
	if err != nil {
		return err
	}
	if list == nil {
		list = []api.NetworkStatus{}
	}
	return a.output(list, func(w io.Writer) error {
		if len(list) == 0 {
			_, err := fmt.Fprintln(w, "no networks")
			return err
		}
		now := a.now()
		for i, st := range list {
			if i > 0 {
				_, _ = fmt.Fprintln(w)
			}
			if err := writeStatus(w, st, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeStatus prints one network's live state: its device, addresses,
// peers and problems.
func writeStatus(w io.Writer, st api.NetworkStatus, now time.Time) error {
	_, _ = fmt.Fprintf(w, "network %s  generation %d  node %s\n", st.Name, st.Generation, dash(st.NodeID))
	backend := dash(st.Backend)
	if st.PID != 0 {
		backend += fmt.Sprintf(", data-plane pid %d", st.PID)
	}
	tw := newTable(w)
	_, _ = fmt.Fprintf(tw, "  interface\t%s\n", dash(st.Interface))
	_, _ = fmt.Fprintf(tw, "  mtu\t%s\n", itoa(st.MTU))
	if st.TooBigDrops > 0 {
		_, _ = fmt.Fprintf(tw, "  too big\t%d packets refused by the underlay (EMSGSIZE), the last %s\n",
			st.TooBigDrops, ageText(now, st.LastTooBigDrop))
	}
	_, _ = fmt.Fprintf(tw, "  backend\t%s\n", backend)
	if st.DataplaneRestarts > 0 || st.DataplaneLastExit != "" {
		_, _ = fmt.Fprintf(tw, "  data-plane restarts\t%d (last death: %s, %s)\n", st.DataplaneRestarts,
			st.DataplaneLastExit, ageText(now, st.DataplaneLastExitAt))
	}
	_, _ = fmt.Fprintf(tw, "  namespace\t%s\n", dash(st.Namespace))
	_, _ = fmt.Fprintf(tw, "  subnet\t%s\n", joinValid(st.Subnet, st.Subnet6))
	_, _ = fmt.Fprintf(tw, "  gateway\t%s\n", joinValid(st.Gateway, st.Gateway6))
	_, _ = fmt.Fprintf(tw, "  listen port\t%s\n", itoa(st.ListenPort))
	_, _ = fmt.Fprintf(tw, "  public key\t%s\n", dash(st.PublicKey))
	_, _ = fmt.Fprintf(tw, "  workloads\t%d\n", st.Workloads)
	_, _ = fmt.Fprintf(tw, "  egress\t%s\n", egressText(st))
	if st.DNS != nil {
		dns := fmt.Sprintf("serial %d, %d records", st.DNS.Serial, st.DNS.Records)
		for _, m := range st.DNS.Members {
			dns += fmt.Sprintf("; %s: serial %d, %d records", m.ID, m.Serial, m.Records)
		}
		_, _ = fmt.Fprintf(tw, "  dns\t%s\n", dns)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, _ = fmt.Fprintln(w)
	if len(st.Peers) == 0 {
		_, _ = fmt.Fprintln(w, "  no peers")
	} else {
		tw = newTable(w)
		_, _ = fmt.Fprintln(tw, "  PEER\tENDPOINT\tALLOWED IPS\tHANDSHAKE\tRX\tTX")
		for _, p := range st.Peers {
			_, _ = fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", p.Name, dash(p.Endpoint), joinValid(p.AllowedIPs...),
				ageText(now, p.LastHandshake), bytesText(p.RxBytes), bytesText(p.TxBytes))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(st.Problems) > 0 {
		_, _ = fmt.Fprintln(w, "\n  problems:")
		for _, p := range st.Problems {
			_, _ = fmt.Fprintf(w, "    - %s\n", p)
		}
	}
	return nil
}

// egressText says whether the network has a way out and from which address.
func egressText(st api.NetworkStatus) string {
	switch {
	case !st.Egress:
		return "none"
	case st.EgressAddress.IsValid():
		return "on, source NAT to " + st.EgressAddress.String()
	}
	return "on, no route out"
}
