package firewall

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Egress is a network's way out on this node, as its namespace sees it:
// the end of the egress veth in the namespace, the transfer address flows
// leave the namespace from, and the destinations they may never reach.
type Egress struct {
	// IfName is the egress veth's end in the network's namespace.
	IfName string
	// Source is the IPv4 transfer address workloads' flows are rewritten
	// to on the way out (the node's underlay rewrites it once more, to the
	// node's own address).
	Source netip.Addr
	// Source6 is the IPv6 transfer address, set only where the node has
	// global IPv6 and an IPv6 default route; unset, the namespace sends no
	// IPv6 out.
	Source6 netip.Addr
	// Blocked are destinations beyond the fixed closed ranges (ClosedRanges)
	// that no flow may go to: the node's own addresses and underlay
	// subnets, the ranges of the node's other networks.
	Blocked []netip.Prefix
}

// ClosedRanges are the destinations egress never reaches whatever the node
// says: private (RFC 1918), shared (RFC 6598), link-local, loopback,
// multicast and the IPv6 unique local and link-local ranges; for IPv6 also
// the unspecified and loopback addresses, IPv4-mapped addresses, the
// discard prefix, local-use NAT64 (it leads to private IPv4), 6to4 (it
// tunnels to any IPv4, private ones included), deprecated site-local and
// multicast.
var ClosedRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/3"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("::/127"),
	netip.MustParsePrefix("::ffff:0:0/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("fec0::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// normalized returns e with addresses unmapped, blocked prefixes masked,
// sorted and without repeats, so equal inputs render identically.
func (e *Egress) normalized() *Egress {
	if e == nil {
		return nil
	}
	out := &Egress{IfName: e.IfName, Source: e.Source.Unmap(), Source6: e.Source6}
	for _, p := range e.Blocked {
		out.Blocked = append(out.Blocked, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked())
	}
	slices.SortFunc(out.Blocked, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	out.Blocked = slices.Compact(out.Blocked)
	return out
}

// validate checks e (normalized); seen holds the names already used.
func (e *Egress) validate(seen map[string]bool) error {
	if e == nil {
		return nil
	}
	if err := validIfName("egress", e.IfName); err != nil {
		return err
	}
	if seen[e.IfName] {
		return fmt.Errorf("interface %q used twice: %w", e.IfName, ErrInvalid)
	}
	if !e.Source.Is4() {
		return fmt.Errorf("egress source %q is not an IPv4 address: %w", e.Source, ErrInvalid)
	}
	if e.Source6.IsValid() && (!e.Source6.Is6() || e.Source6.Is4In6()) {
		return fmt.Errorf("egress source6 %q is not an IPv6 address: %w", e.Source6, ErrInvalid)
	}
	for _, p := range e.Blocked {
		if !p.IsValid() {
			return fmt.Errorf("egress blocked prefix %q is not a prefix: %w", p, ErrInvalid)
		}
	}
	return nil
}

// egressForward is what the forward chain of a network's namespace adds
// for its way out: workloads (the bridge, never the overlay: remote members
// and access peers leave through their own node) may open IPv4 flows (and
// IPv6 ones where the node has global IPv6)
// through the egress veth, to any destination but the closed and blocked
// ones. Replies come back through the chain's established rule; nothing
// from the veth opens a flow, so the chain's policy drops it.
func egressForward(r Rules) []match {
	e := r.Egress
	if e == nil {
		return nil
	}
	var rules []match
	for _, p := range append(slices.Clone(ClosedRanges), e.Blocked...) {
		rules = append(rules, rule(oifname(e.IfName), daddrIn(p), drop))
	}
	rules = append(rules, rule(iifname(r.Bridge), oifname(e.IfName), nfproto(unix.NFPROTO_IPV4, "ipv4"), accept))
	if e.Source6.IsValid() {
		rules = append(rules, rule(iifname(r.Bridge), oifname(e.IfName), nfproto(unix.NFPROTO_IPV6, "ipv6"), accept))
	}
	return rules
}

// egressNAT is the namespace's source NAT chain: what leaves through the
// egress veth leaves from the transfer address.
func egressNAT(r Rules) []chain {
	e := r.Egress
	if e == nil {
		return nil
	}
	return []chain{{
		name: "egress-nat", hook: nftables.ChainHookPostrouting, hookName: "postrouting",
		ctype: nftables.ChainTypeNAT, priority: 100, policy: nftables.ChainPolicyAccept,
		rules: snatRules(e),
	}}
}

// snatRules rewrites what leaves through the egress veth to the transfer
// address of its family.
func snatRules(e *Egress) []match {
	rules := []match{rule(oifname(e.IfName), nfproto(unix.NFPROTO_IPV4, "ipv4"), snatTo(e.Source))}
	if e.Source6.IsValid() {
		rules = append(rules, rule(oifname(e.IfName), nfproto(unix.NFPROTO_IPV6, "ipv6"), snatTo(e.Source6)))
	}
	return rules
}

// snatTo rewrites the source of packets of a's family to a.
func snatTo(a netip.Addr) match {
	text, family := "snat ip to ", byte(unix.NFPROTO_IPV4)
	if a.Is6() {
		text, family = "snat ip6 to ", unix.NFPROTO_IPV6
	}
	return match{text: text + a.String(), exprs: []expr.Any{
		&expr.Immediate{Register: reg, Data: a.AsSlice()},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: uint32(family), RegAddrMin: reg},
	}}
}

// masquerade rewrites the source to the address of the outgoing interface.
var masquerade = match{text: "masquerade", exprs: []expr.Any{&expr.Masq{}}}
