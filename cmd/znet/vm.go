package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/znet/znet/api"
	"github.com/znet/znet/guestconfig"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/tap"
)

// vmCommands are the commands for tap workloads: what a VM's monitor and
// its guest need.
func vmCommands() []*command {
	return []*command{
		{
			words: []string{"workload", "guest-config"}, args: "NETWORK NAME [--id ID] [--set-name IF]", min: 2, max: 2,
			summary: "print cloud-init network-config (version 2) for a tap workload's guest",
			setup: func(fs *flag.FlagSet) runFunc {
				id := fs.String("id", guestconfig.DefaultID, "the NIC's `ID` under ethernets")
				setName := fs.String("set-name", "", "rename the guest's NIC to `IF` (default: keep the guest's name)")
				return func(ctx context.Context, a *app, args []string) error {
					return guestConfig(ctx, a, args[0], args[1], guestconfig.Options{ID: *id, SetName: *setName})
				}
			},
		},
		{
			words: []string{"workload", "exec"}, args: "NETWORK NAME -- CMD [ARGS...]", min: 3, max: 1 << 16,
			summary: "run CMD (a VM monitor) with the tap's queues as fds 3, 4, ... (needs root on the node)",
			setup:   func(*flag.FlagSet) runFunc { return workloadExec },
		},
	}
}

// tapOf returns the attachment of a tap workload, or an error saying
// that name is not one.
func tapOf(ctx context.Context, a *app, network, name string) (api.Attachment, error) {
	att, err := a.client().Workload(ctx, network, name)
	if err != nil {
		return api.Attachment{}, err
	}
	if att.Kind != api.KindTap {
		return api.Attachment{}, fmt.Errorf("workload %s in %s is not a tap (kind %q): attach it with --tap", name, network, att.Kind)
	}
	return att, nil
}

func guestConfig(ctx context.Context, a *app, network, name string, o guestconfig.Options) error {
	att, err := tapOf(ctx, a, network, name)
	if err != nil {
		return err
	}
	cfg, err := guestconfig.Build(att, o)
	if err != nil {
		return fmt.Errorf("workload %s: %w", name, err)
	}
	return a.output(cfg, func(w io.Writer) error {
		out, err := guestconfig.Render(att, o)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	})
}

// exitStatus is a command's exit code that is not an error of znet's own:
// the code of the command that workload exec ran.
type exitStatus struct{ code int }

func (e *exitStatus) Error() string { return "exit status " + strconv.Itoa(e.code) }

// workloadExec opens the tap's queues inside the network's namespace, where
// the tap lives, and runs the command in the caller's namespace with them
// as fds 3, 4, ...: the fds keep working from there. The command is a
// child, killed if znet dies, sent SIGTERM when znet gets SIGINT or
// SIGTERM; znet exits with its exit code.
func workloadExec(ctx context.Context, a *app, args []string) error {
	network, name, argv := args[0], args[1], args[2:]
	att, err := tapOf(ctx, a, network, name)
	if err != nil {
		return err
	}
	files, err := openQueues(att)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(a.ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.stdin, a.stdout, a.stderr
	cmd.ExtraFiles = files
	cmd.Env = append(os.Environ(), tapEnv(att, len(files))...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	err = cmd.Start()
	// The child holds the queues now; znet's copies would keep them
	// attached after the child exits.
	for _, f := range files {
		_ = f.Close()
	}
	if err != nil {
		return fmt.Errorf("running %s: %w", argv[0], err)
	}
	var ee *exec.ExitError
	if err := cmd.Wait(); errors.As(err, &ee) {
		if code := ee.ExitCode(); code >= 0 {
			return &exitStatus{code: code}
		}
		return &exitStatus{code: 128 + int(ee.Sys().(syscall.WaitStatus).Signal())}
	} else if err != nil {
		return fmt.Errorf("running %s: %w", argv[0], err)
	}
	return nil
}

// openQueues opens every queue of the tap in att.
func openQueues(att api.Attachment) ([]*os.File, error) {
	ns, err := namespaces.Open(att.NetNS)
	if err != nil {
		return nil, fmt.Errorf("opening the network's namespace (workload exec needs root on the node): %w", err)
	}
	defer func() { _ = ns.Close() }()
	return tap.Open(ns, att.Interface, max(att.Queues, 1))
}

// tapEnv tells the command where its queues are and what its NIC is, for
// wrapper scripts: ZNET_TAP_FDS=3,4 ZNET_TAP_MAC=02:... ZNET_TAP_NAME=...
func tapEnv(att api.Attachment, queues int) []string {
	fds := make([]string, queues)
	for i := range fds {
		fds[i] = strconv.Itoa(3 + i)
	}
	return []string{
		"ZNET_TAP_FDS=" + strings.Join(fds, ","),
		"ZNET_TAP_MAC=" + att.MAC,
		"ZNET_TAP_NAME=" + att.Interface,
		"ZNET_TAP_MTU=" + strconv.Itoa(att.MTU),
	}
}
