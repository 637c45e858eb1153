package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/znet/znet/deploy"
	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
)

// uniqueName returns a fresh "zt"-prefixed name for a lab of this run.
func uniqueName() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (it crashes the program instead)
	return "zt" + hex.EncodeToString(b)
}

// upLab builds a lab of n nodes in a new temporary directory. down removes
// it, checks that nothing of it is left and logs what went wrong, naming
// the lab by what it is for; it must be called even when upLab fails.
func upLab(ctx context.Context, znetd string, n int, log *slog.Logger, what string) (l *lab.Lab, down func(), err error) {
	name := uniqueName()
	dir, err := os.MkdirTemp("", name+"-")
	if err != nil {
		return nil, func() {}, err
	}
	remove := func() error {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		errs := []error{lab.Down(dctx, dir)}
		// A lab that failed before describing itself: remove what it made.
		for _, p := range []string{name + "-", namespaces.NodePrefix(name)} {
			left, _ := namespaces.List(p)
			for _, ns := range left {
				errs = append(errs, namespaces.Delete(ns))
			}
		}
		_ = os.RemoveAll(dir)
		errs = append(errs, leftovers(name))
		return errors.Join(errs...)
	}
	down = func() {
		if err := remove(); err != nil {
			log.Error("removing the "+what+" lab", "err", err)
		}
	}
	l, err = lab.Up(ctx, lab.Config{Name: name, Dir: dir, Nodes: n, Znetd: znetd, Wireguard: "userspace"})
	if err != nil {
		return nil, down, fmt.Errorf("lab up: %w", err)
	}
	return l, down, nil
}

// leftovers returns an error naming every namespace and process of the lab
// name that is still there.
func leftovers(name string) error {
	var left []string
	for _, p := range []string{name, namespaces.NodePrefix(name)} {
		ns, _ := namespaces.List(p)
		left = append(left, ns...)
	}
	left = append(left, processesMatching(name)...)
	if len(left) > 0 {
		return fmt.Errorf("left behind by lab %s: %s", name, strings.Join(left, "; "))
	}
	return nil
}

// processesMatching lists "pid: cmdline" of processes whose command line
// contains s.
func processesMatching(s string) []string {
	var out []string
	self := fmt.Sprint(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name() == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		if strings.Contains(cmd, s) {
			out = append(out, e.Name()+": "+cmd)
		}
	}
	return out
}

// deployOver deploys d over nodes of l (all public, reached through their
// sockets) and waits for every handshake.
func deployOver(ctx context.Context, l *lab.Lab, nodes []lab.Node, d *deploy.Deployment) error {
	for _, n := range nodes {
		d.Nodes = append(d.Nodes, deploy.NodeRef{ID: n.ID, API: "unix://" + n.Socket, EndpointHost: n.Underlay.String()})
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res, err := deploy.Run(dctx, d, deploy.Options{StateDir: filepath.Join(l.Dir, "deploy"), PollInterval: 100 * time.Millisecond})
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	return nil
}
