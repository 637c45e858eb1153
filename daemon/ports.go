package daemon

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ReservedPortsSysctl is where Linux keeps, per network namespace, the
// ports it never hands out as ephemeral ones (they can still be bound by
// number).
const ReservedPortsSysctl = "/proc/sys/net/ipv4/ip_local_reserved_ports"

// ReservePortRange adds min-max to the reserved ports in the sysctl file
// at path (ReservedPortsSysctl of the underlay), keeping what is there.
// The listen ports lie in the kernel's ephemeral range (32768-60999 by
// default), and every data plane opens an ephemeral UDP socket in the
// underlay for DNS forwarding: without the reservation such a socket takes
// ports that a network should get (a node ran out at 976 networks of
// 1,000 ports) or, worse, the port of a data plane that died, so that its
// restart cannot bind it. Nothing is written when the range is reserved
// already.
func ReservePortRange(path string, minPort, maxPort int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading reserved ports: %w", err)
	}
	cur := strings.TrimSpace(string(b))
	covered, err := portsCover(cur, minPort, maxPort)
	if err != nil {
		return fmt.Errorf("reading reserved ports %q: %w", cur, err)
	}
	if covered {
		return nil
	}
	entry := fmt.Sprintf("%d-%d", minPort, maxPort)
	if cur != "" {
		entry = cur + "," + entry
	}
	if err := os.WriteFile(path, []byte(entry+"\n"), 0o644); err != nil {
		return fmt.Errorf("reserving ports %d-%d: %w", minPort, maxPort, err)
	}
	return nil
}

// portsCover reports whether the list list ("a,b-c,...", as the sysctl
// shows it) holds every port from minPort to maxPort.
func portsCover(list string, minPort, maxPort int) (bool, error) {
	next := minPort // the first port not yet known to be covered
	// The kernel prints the list sorted and merged, so one pass suffices.
	for _, e := range strings.Split(list, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(e, "-")
		if !isRange {
			hi = lo
		}
		a, err := strconv.Atoi(lo)
		if err != nil {
			return false, err
		}
		z, err := strconv.Atoi(hi)
		if err != nil {
			return false, err
		}
		if a <= next && z >= next {
			next = z + 1
		}
	}
	return next > maxPort, nil
}
