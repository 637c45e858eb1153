// Command znetd-dataplane is one network's userspace WireGuard data plane,
// run as `znetd-dataplane dataplane --ifname X --mtu N [--dns-socket P]`
// by znetd inside the network's namespace (see dataplane.Run), never by
// hand; or, as `znetd-dataplane resolver --ifname X --dns-socket P`, the
// resolver of a network whose device is the kernel's (dataplane.RunResolver).
// It does what `znetd dataplane` does, but links only the data plane's
// packages: with one such process per network, the smaller program text is
// resident memory saved per network. znetd runs it when it lies next to the
// znetd executable (dataplane.Binary), and falls back to its own
// `dataplane` and `resolver` commands otherwise.
package main

import (
	"os"

	"github.com/znet/znet/dataplane"
)

func main() {
	os.Exit(dataplane.Main(os.Args[1:]))
}
