// Command znet-bench measures znet on this machine and prints the figures
// beside their goals (issue 6): `make bench`, or `znet-bench --part
// dataplane`. It needs root, builds its own labs and removes them. Run as
// `znet-bench wg-bare ...` it is the bare wireguard-go contender.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/znet/znet/internal/bench"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == bench.BareWGCommand {
		os.Exit(bench.RunBareWG(os.Args[2:]))
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "znet-bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("znet-bench", flag.ContinueOnError)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	znetd := fs.String("znetd", filepath.Join(filepath.Dir(self), "znetd"), "znetd `binary` the labs run")
	part := fs.String("part", "", "comma-separated parts to run: "+strings.Join(bench.Parts, ", ")+" (default all)")
	secs := fs.Int("seconds", 10, "length of each iperf3 run")
	rounds := fs.Int("rounds", 3, "rounds per contender")
	pairRounds := fs.Int("pair-rounds", bench.DefaultPairRounds, "rounds of the data-plane part (znet and the bare library back to back in each)")
	nice := fs.Int("nice", bench.DefaultNice, "autogroup nice of the data-plane part's contenders, iperf3 and ping (-20..19; 0 is the default weight)")
	networks := fs.Int("networks", bench.DefaultNetworks, "networks on one node in the scale part")
	nodes := fs.Int("nodes", bench.DefaultLabNodes, "nodes of the lab100 part")
	out := fs.String("out", "", "JSON report `file` (default bench-DATE.json in a new temporary directory)")
	markdown := fs.Bool("markdown", false, "print the table as Markdown too")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root")
	}
	if _, err := os.Stat(*znetd); err != nil {
		return fmt.Errorf("znetd: %w", err)
	}
	var parts []string
	if *part != "" {
		parts = strings.Split(*part, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	rep, runErr := bench.Run(ctx, bench.Config{Znetd: *znetd, Self: self, Parts: parts, Seconds: *secs, Rounds: *rounds, PairRounds: *pairRounds, Nice: *nice, Networks: *networks, Nodes: *nodes, Log: log})
	if rep == nil {
		return runErr
	}
	fmt.Printf("\nznet-bench %s on %s (took %s; load average %s at the start, %s at the end)\n\n",
		rep.Date.Format(time.RFC3339), rep.Host, rep.Duration, rep.LoadAvg[0], rep.LoadAvg[len(rep.LoadAvg)-1])
	if err := rep.WriteTable(os.Stdout); err != nil {
		return err
	}
	if *markdown {
		fmt.Println()
		rep.WriteMarkdown(os.Stdout)
	}
	path := *out
	if path == "" {
		dir, err := os.MkdirTemp("", "znet-bench-")
		if err != nil {
			return err
		}
		path = filepath.Join(dir, "bench-"+rep.Date.Format("20060102T150405Z")+".json")
	}
	if err := rep.WriteJSON(path); err != nil {
		return err
	}
	fmt.Println("\nJSON report:", path)
	return runErr
}
