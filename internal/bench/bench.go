package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"
)

// Parts are the parts Run knows, in the order it runs them.
var Parts = []string{"dataplane", "control", "churn", "deploy", "dns", "scale", "lab100"}

// DefaultPairRounds is how many rounds the data-plane part runs.
const DefaultPairRounds = 5

// DefaultNice is the autogroup nice of the data-plane part's processes:
// weight 9548 against 1024 for a session at nice 0.
const DefaultNice = -10

// Config says what to measure and with what.
type Config struct {
	// Znetd is the znetd binary the labs run.
	Znetd string
	// Self is this bench binary, re-executed as the bare wireguard-go
	// contender (RunBareWG).
	Self string
	// Parts are the parts to run (nil means all of Parts).
	Parts []string
	// Seconds is how long each iperf3 run lasts.
	Seconds int
	// Rounds is how many times each contender is measured.
	Rounds int
	// Nice is the autogroup nice the data-plane part gives every
	// contender's processes and its iperf3 and ping alike (znet-bench's
	// default is DefaultNice; 0 is the kernel's default weight): see
	// doc.go.
	Nice int
	// PairRounds is how many rounds the data-plane part runs (znet and the
	// bare library back to back in each).
	PairRounds int
	// Networks is how many networks the scale part puts on one node.
	Networks int
	// Nodes is how many nodes the lab100 part deploys over.
	Nodes int
	// Log gets progress.
	Log *slog.Logger
}

// Run measures the parts of cfg and returns the report. A part that fails
// leaves its rows "not measured" and its error is returned (joined) beside
// the report; every lab is removed either way.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Parts) == 0 {
		cfg.Parts = Parts
	}
	for _, p := range cfg.Parts {
		if !slices.Contains(Parts, p) {
			return nil, fmt.Errorf("unknown part %q (want one of %v)", p, Parts)
		}
	}
	if cfg.Nice < -20 || cfg.Nice > 19 {
		return nil, fmt.Errorf("nice %d: out of -20..19", cfg.Nice)
	}
	if cfg.PairRounds == 0 {
		cfg.PairRounds = DefaultPairRounds
	}
	if cfg.Networks == 0 {
		cfg.Networks = DefaultNetworks
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = DefaultLabNodes
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	start := time.Now()
	rep := &Report{Date: start.UTC(), Host: host, Parts: cfg.Parts, LoadAvg: []string{loadAvg()}}
	var errs []error
	for _, part := range Parts {
		if !slices.Contains(cfg.Parts, part) {
			continue
		}
		cfg.Log.Info("measuring", "part", part)
		var rows []Row
		var err error
		switch part {
		case "dataplane":
			rows, err = dataplane(ctx, cfg, cfg.Log)
		case "control":
			rows, err = control(ctx, cfg, cfg.Log)
		case "churn":
			rows = churnRows(ctx, cfg)
		case "deploy":
			rows = deployRows(ctx, cfg)
		case "dns":
			rows, err = dnsPart(ctx, cfg, cfg.Log)
		case "scale":
			rows, err = scalePart(ctx, cfg, cfg.Log)
		case "lab100":
			rows, err = lab100(ctx, cfg, cfg.Log)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", part, err))
			rows = []Row{notMeasured(part, "every figure of this part", "", "failed: "+err.Error())}
		}
		rep.Rows = append(rep.Rows, rows...)
	}
	rep.Duration = time.Since(start).Round(time.Second).String()
	rep.LoadAvg = append(rep.LoadAvg, loadAvg())
	return rep, errors.Join(errs...)
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
