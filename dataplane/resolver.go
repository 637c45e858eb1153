package dataplane

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/namespaces"
)

// The modes of the program, its first argument.
const (
	// modeDataplane runs a network's WireGuard device and its resolver.
	modeDataplane = "dataplane"
	// modeResolver runs only a network's resolver, for a network whose
	// device needs no process of its own (kernel WireGuard).
	modeResolver = "resolver"
)

// Main is the main of the program: `<exe> dataplane ...` runs a data plane
// (Run), `<exe> resolver ...` a resolver-only process (RunResolver). args
// are the arguments after the program name; without a mode it is a data
// plane. It returns the exit code.
func Main(args []string) int {
	if len(args) > 0 && args[0] == modeResolver {
		return RunResolver(args[1:])
	}
	return Run(args)
}

// RunResolver is the main of a resolver-only process, run as
// `<exe> resolver --ifname X --dns-socket P` inside the network's namespace
// with the underlay namespace passed as fd 3, like a data plane but with
// no WireGuard device. It opens the resolver's control socket and its
// forwarding socket in the underlay, then drops its privileges exactly
// as a data plane does (its own user, UID(ifname)), and serves until
// SIGTERM or SIGINT. Exit codes are those of Run.
func RunResolver(args []string) int {
	fs := flag.NewFlagSet(modeResolver, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	ifname := fs.String("ifname", "", "name of the network's WireGuard device, which names the process (required)")
	dnsSocket := fs.String("dns-socket", "", "serve the resolver, configured through this control `socket` (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || checkIfName(*ifname) != nil || *dnsSocket == "" {
		fmt.Fprintf(os.Stderr, "resolver: bad arguments %q\n", args)
		fs.Usage()
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).
		With("ifname", *ifname, "pid", os.Getpid(), "mode", modeResolver)
	if err := serveResolverOnly(log, *ifname, *dnsSocket, netns.NsHandle(underlayFd)); err != nil {
		log.Error("resolver failed", "err", err)
		return 1
	}
	return 0
}

// serveResolverOnly runs the resolver until a signal arrives.
func serveResolverOnly(log *slog.Logger, ifname, dnsSocket string, underlay netns.NsHandle) error {
	if !namespaces.IsNetNS(fmt.Sprintf("/proc/self/fd/%d", underlay)) {
		return fmt.Errorf("fd %d: %w", underlay, namespaces.ErrNotNetNS)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM, unix.SIGINT)
	defer signal.Stop(term)
	if err := allowLowPorts(); err != nil {
		return err
	}
	// No OnAnswer: a resolver-only process is started with all its CPUs
	// (only data planes get idlemem.OneProcEnv).
	stop, err := serveResolver(log, dnsSocket, underlay, nil)
	if err != nil {
		return fmt.Errorf("resolver control socket: %w", err)
	}
	defer stop()
	// Everything it needs from the underlay is open: the forwarding socket.
	if err := underlay.Close(); err != nil {
		return fmt.Errorf("closing the underlay handle: %w", err)
	}
	uid := UID(ifname)
	if err := dropPrivileges(uid); err != nil {
		return err // fail closed: never serve with them
	}
	log.Info("resolver running", "uid", uid)
	sig := <-term
	log.Info("stopping", "signal", sig.String())
	return nil
}
