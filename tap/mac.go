package tap

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
)

// MAC returns the MAC address of workload name in network: the first five
// bytes of sha256("network/name") behind 02, so it is unicast, locally
// administered (never a vendor's), recognisable, and the same every time
// the workload is attached, on every node.
func MAC(network, name string) net.HardwareAddr {
	sum := sha256.Sum256([]byte(network + "/" + name))
	mac := make(net.HardwareAddr, 6)
	mac[0] = 0x02
	copy(mac[1:], sum[:5])
	return mac
}

// ErrBadMAC is returned (wrapped) by ParseMAC for text that is not a MAC a
// port can be pinned to.
var ErrBadMAC = errors.New("not a unicast Ethernet MAC address")

// ParseMAC parses a 48-bit MAC in the usual notations and refuses the
// ones no NIC may send from: multicast (and broadcast) and all-zero.
func ParseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%q: %w", s, ErrBadMAC)
	case len(mac) != 6:
		return nil, fmt.Errorf("%q is not 48 bits: %w", s, ErrBadMAC)
	case mac[0]&1 == 1:
		return nil, fmt.Errorf("%q is a multicast address: %w", s, ErrBadMAC)
	case string(mac) == string(make([]byte, 6)):
		return nil, fmt.Errorf("%q is all zeros: %w", s, ErrBadMAC)
	}
	return mac, nil
}
