// Command znetd-dataplane is one network's userspace WireGuard data plane,
// run as `znetd-dataplane dataplane --ifname X --mtu N [--dns-socket P]`
// by znetd inside the network's namespace (see overlay.RunDataplane), never
// by hand. It does what `znetd dataplane` does, but links only the data
// plane's packages: with one such process per network, the smaller program
// text is resident memory saved per network. znetd runs it when it lies
// next to the znetd executable (overlay.DataplaneBinary), and falls back to
// its own `dataplane` command otherwise.
package main

import (
	"os"

	"github.com/znet/znet/overlay"
)

func main() {
	os.Exit(overlay.RunDataplane(os.Args[1:]))
}
