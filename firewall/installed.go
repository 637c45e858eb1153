package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Installer installs rules in one namespace and tells its nftables
// generation. netconf's namespaces implement it (and its fake, without a
// kernel).
type Installer interface {
	// Install replaces the namespace's rules by r, as Apply does.
	Install(r Rules) error
	// Generation returns the namespace's nftables ruleset generation,
	// which the kernel bumps at every committed change of any table there.
	Generation() (uint32, error)
}

// Installed is what Ensure last put into a namespace: the rules, and the
// generation right after.
type Installed struct {
	Rules Rules
	Gen   uint32
}

// Ensure installs r through in unless last shows it there already: the
// same rules, and the generation where the install left it, so any other
// change of the ruleset since (an operator's nft, another install) forces a
// rebuild. It returns what is installed now; nil when that is unknown (the
// install failed, or its generation could not be read), which makes the
// next call install again. An nft change made in the instant between an
// install and the read of its generation is not seen.
func Ensure(in Installer, r Rules, last *Installed) (*Installed, error) {
	if last != nil && last.Rules.Equal(r) {
		if gen, err := in.Generation(); err == nil && gen == last.Gen {
			return last, nil
		}
	}
	if err := in.Install(r); err != nil {
		return nil, err
	}
	gen, err := in.Generation()
	if err != nil {
		return nil, nil //nolint:nilerr // installed; only the memory of it is lost
	}
	return &Installed{Rules: r, Gen: gen}, nil
}

// Equal reports whether r and o are the same rules, in the same order.
func (r Rules) Equal(o Rules) bool {
	return r.Bridge == o.Bridge && r.Overlay == o.Overlay && slices.Equal(r.Ports, o.Ports) &&
		slices.Equal(r.AccessPeers, o.AccessPeers) && r.Egress.Equal(o.Egress)
}

// Equal reports whether e and o are the same way out (both nil: none).
func (e *Egress) Equal(o *Egress) bool {
	if e == nil || o == nil {
		return e == o
	}
	return e.IfName == o.IfName && e.Source == o.Source && e.Source6 == o.Source6 && slices.Equal(e.Blocked, o.Blocked)
}

// Generation returns the nftables ruleset generation of ns.
func Generation(ns netns.NsHandle) (uint32, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(ns)})
	if err != nil {
		return 0, fmt.Errorf("nftables in namespace: %w", err)
	}
	defer func() { _ = c.Close() }()
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
			Flags: netlink.Request,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0}, // nfgenmsg
	}
	msgs, err := c.Execute(req)
	if err != nil {
		return 0, fmt.Errorf("reading the nftables generation: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, fmt.Errorf("reading the nftables generation: %w", err)
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32(), ad.Err()
			}
		}
	}
	return 0, errors.New("reading the nftables generation: no NFTA_GEN_ID in the answer")
}
