package firewall

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// uplinkTable is the name of the one table znet keeps in the node's
// underlay namespace (the machine's own on a real node), inet family.
const uplinkTable = "znet-egress"

// EgressLink is one network's egress veth as the node's underlay sees it:
// its end there and the transfer addresses the network's flows come from
// (Source6 unset: the link carries no IPv6).
type EgressLink struct {
	IfName  string
	Source  netip.Addr
	Source6 netip.Addr
}

// normalizeLinks returns links with unmapped addresses, sorted by name.
func normalizeLinks(links []EgressLink) []EgressLink {
	out := make([]EgressLink, len(links))
	for i, l := range links {
		out[i] = EgressLink{IfName: l.IfName, Source: l.Source.Unmap(), Source6: l.Source6}
	}
	slices.SortFunc(out, func(a, b EgressLink) int { return cmp.Compare(a.IfName, b.IfName) })
	return out
}

// validateLinks checks links (normalized).
func validateLinks(links []EgressLink) error {
	seen := map[string]bool{}
	addrs := map[netip.Addr]bool{}
	for _, l := range links {
		if err := validIfName("egress link", l.IfName); err != nil {
			return err
		}
		if !l.Source.Is4() {
			return fmt.Errorf("egress link %s: source %q is not an IPv4 address: %w", l.IfName, l.Source, ErrInvalid)
		}
		if l.Source6.IsValid() && (!l.Source6.Is6() || l.Source6.Is4In6() || addrs[l.Source6]) {
			return fmt.Errorf("egress link %s: source6 %q is not an IPv6 address or repeats one: %w", l.IfName, l.Source6, ErrInvalid)
		}
		addrs[l.Source6] = l.Source6.IsValid()
		if seen[l.IfName] || addrs[l.Source] {
			return fmt.Errorf("egress link %s (%s) repeats a name or an address: %w", l.IfName, l.Source, ErrInvalid)
		}
		seen[l.IfName], addrs[l.Source] = true, true
	}
	return nil
}

// uplink builds the underlay's table for links (normalized): the node
// masquerades the networks' flows behind its own address, forwards only
// replies towards a network, takes nothing from a network for itself, and
// lets a network send only from its transfer address (so one network
// cannot pass as another).
func uplink(links []EgressLink) table {
	input := chain{
		name: "input", hook: nftables.ChainHookInput, hookName: "input",
		priority: 0, policy: nftables.ChainPolicyAccept,
	}
	forward := chain{
		name: "forward", hook: nftables.ChainHookForward, hookName: "forward",
		priority: 0, policy: nftables.ChainPolicyAccept,
	}
	nat := chain{
		name: "postrouting", hook: nftables.ChainHookPostrouting, hookName: "postrouting",
		ctype: nftables.ChainTypeNAT, priority: 100, policy: nftables.ChainPolicyAccept,
	}
	established := ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED, "established", "related")
	for _, l := range links {
		input.rules = append(input.rules, rule(iifname(l.IfName), drop))
		forward.rules = append(forward.rules, rule(iifname(l.IfName), saddrIsNot(l.Source), drop))
		if l.Source6.IsValid() {
			forward.rules = append(forward.rules, rule(iifname(l.IfName), saddrIsNot(l.Source6), drop))
		} else {
			forward.rules = append(forward.rules, rule(iifname(l.IfName), nfproto(unix.NFPROTO_IPV6, "ipv6"), drop))
		}
		forward.rules = append(forward.rules,
			rule(oifname(l.IfName), established, accept),
			rule(oifname(l.IfName), drop),
		)
		nat.rules = append(nat.rules, rule(saddr(l.Source), masquerade))
		if l.Source6.IsValid() {
			nat.rules = append(nat.rules, rule(saddr(l.Source6), masquerade))
		}
	}
	return table{family: nftables.TableFamilyINet, chains: []chain{input, forward, nat}}
}

// RenderUplink returns the text of the underlay table ApplyUplink installs
// for links, in the style of Render.
func RenderUplink(links []EgressLink) string {
	var b strings.Builder
	renderTable(&b, uplinkTable, uplink(normalizeLinks(links)))
	return b.String()
}

// ApplyUplink replaces znet's table in the underlay namespace ns with the
// one for links, atomically; with no links it removes the table, so
// nothing of znet stays in the underlay once the last way out is gone.
// It touches no other table. ns is not closed.
func ApplyUplink(ns netns.NsHandle, links []EgressLink) error {
	links = normalizeLinks(links)
	if err := validateLinks(links); err != nil {
		return err
	}
	c, err := conn(ns)
	if err != nil {
		return err
	}
	nt := &nftables.Table{Name: uplinkTable, Family: nftables.TableFamilyINet}
	c.AddTable(nt)
	c.DelTable(nt)
	if len(links) > 0 {
		c.AddTable(nt)
		if err := add(c, nt, uplink(links)); err != nil {
			return fmt.Errorf("applying underlay egress table: %w", err)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("applying underlay egress table: %w", err)
	}
	return nil
}
