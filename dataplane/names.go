package dataplane

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/znet/znet/internal/acceptloop"
	"github.com/znet/znet/internal/linkname"
)

// DefaultMTU is the MTU of a device whose MTU is not given.
const DefaultMTU = 1420

// SocketDir is where userspace WireGuard devices put their UAPI sockets
// (<SocketDir>/<ifname>.sock), shared by every namespace of the machine.
const SocketDir = "/var/run/wireguard"

// UAPISocket returns the UAPI socket of the data plane of ifname.
func UAPISocket(ifname string) string {
	return filepath.Join(SocketDir, ifname+".sock")
}

// ResolverSocket returns the control socket of the resolver of the network
// whose device is ifname, in the run directory runDir. It is the same
// whichever process hosts the resolver (the network's userspace data plane,
// or its resolver-only process), so a client needs to know neither.
func ResolverSocket(runDir, ifname string) string {
	return filepath.Join(runDir, ifname+".dns")
}

// ValidMTU reports whether mtu is an MTU a device may have: 0 (the
// default) or 576 to 65535.
func ValidMTU(mtu int) bool {
	return mtu == 0 || (mtu >= 576 && mtu <= 65535)
}

// checkIfName accepts names that are valid Linux interface names and safe
// as file names.
func checkIfName(name string) error {
	if err := linkname.Check(name); err != nil {
		return fmt.Errorf("interface name %q: %w", name, os.ErrInvalid)
	}
	return nil
}

// acceptUAPI hands every connection accepted on l to handle, each on a
// goroutine of its own, until l fails for good (net.ErrClosed once it is
// closed). A temporary error is waited out (acceptloop): running out of
// descriptors, which connections to the resolver in the same process could
// cause, must not end the data plane.
func acceptUAPI(l net.Listener, handle func(net.Conn)) error {
	for {
		c, err := acceptloop.Accept(l)
		if err != nil {
			return err
		}
		go handle(c)
	}
}
