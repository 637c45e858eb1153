package bench

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"
)

// BareWGCommand is the first argument that makes the bench binary run
// RunBareWG instead of the benchmarks.
const BareWGCommand = "wg-bare"

// RunBareWG is the main of the bare wireguard-go contender: one device of
// the golang.zx2c4.com/wireguard library on a TUN in the process's own
// namespace, with the library's default Bind (no underlay namespace, no
// bridge, no firewall), configured through its UAPI socket (`wg setconf`).
// args are the arguments after BareWGCommand. It serves until SIGTERM or
// SIGINT and returns the exit code.
func RunBareWG(args []string) int {
	fs := flag.NewFlagSet(BareWGCommand, flag.ContinueOnError)
	ifname := fs.String("ifname", "", "name of the device (required)")
	mtu := fs.Int("mtu", 1420, "MTU of the device")
	if err := fs.Parse(args); err != nil || *ifname == "" || fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: bad arguments %q\n", BareWGCommand, args)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("ifname", *ifname)
	if err := serveBareWG(*ifname, *mtu); err != nil {
		log.Error("bare wireguard-go failed", "err", err)
		return 1
	}
	return 0
}

func serveBareWG(ifname string, mtu int) error {
	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM, unix.SIGINT)
	defer signal.Stop(term)
	tdev, err := tun.CreateTUN(ifname, mtu)
	if err != nil {
		return fmt.Errorf("creating tun %s: %w", ifname, err)
	}
	dev := device.NewDevice(tdev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, "wg-bare: "))
	defer dev.Close()
	f, err := ipc.UAPIOpen(ifname)
	if err != nil {
		return fmt.Errorf("opening UAPI socket: %w", err)
	}
	uapi, err := ipc.UAPIListen(ifname, f)
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("listening on UAPI socket: %w", err)
	}
	defer func() { _ = os.Remove(uapiPath(ifname)) }()
	defer func() { _ = uapi.Close() }()
	errs := make(chan error, 1)
	go func() {
		for {
			c, err := uapi.Accept()
			if err != nil {
				errs <- err
				return
			}
			go dev.IpcHandle(c)
		}
	}()
	select {
	case <-term:
		return nil
	case err := <-errs:
		if errors.Is(err, net.ErrClosed) {
			return errors.New("UAPI socket removed")
		}
		return fmt.Errorf("UAPI listener: %w", err)
	case <-dev.Wait():
		return errors.New("device closed")
	}
}

// uapiPath is where wireguard-go (library and binary) puts ifname's UAPI
// socket.
func uapiPath(ifname string) string { return "/var/run/wireguard/" + ifname + ".sock" }
