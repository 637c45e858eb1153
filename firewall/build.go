package firewall

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// table is one nftables table as Apply installs it and Render shows it.
type table struct {
	family nftables.TableFamily
	sets   []set
	chains []chain
}

// chain is a chain of a table; a base chain has a hook, else it is only
// reached by jumps.
type chain struct {
	name     string
	hook     *nftables.ChainHook
	hookName string
	ctype    nftables.ChainType // "" is filter
	priority nftables.ChainPriority
	policy   nftables.ChainPolicy
	rules    []match
}

// base reports whether c is attached to a hook.
func (c chain) base() bool { return c.hook != nil }

// rule joins matches and a verdict into one rule.
func rule(parts ...match) match {
	var r match
	texts := make([]string, 0, len(parts))
	for _, p := range parts {
		texts = append(texts, p.text)
		r.exprs = append(r.exprs, p.exprs...)
	}
	r.text = strings.Join(texts, " ")
	return r
}

var (
	accept = verdict(expr.VerdictAccept, "")
	drop   = verdict(expr.VerdictDrop, "")
)

// build returns the tables of r (normalized): inet first, then bridge.
func build(r Rules) []table {
	return []table{inetTable(r), bridgeTable(r)}
}

// inetTable filters what reaches the gateway and what is routed.
func inetTable(r Rules) table {
	access := accessSets(r.AccessPeers)
	input := chain{
		name: "input", hook: nftables.ChainHookInput, hookName: "input",
		priority: 0, policy: nftables.ChainPolicyDrop,
		rules: []match{
			rule(iifname("lo"), accept),
			rule(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED, "established", "related"), accept),
			rule(ctState(expr.CtStateBitINVALID, "invalid"), drop),
		},
	}
	for _, dev := range []string{r.Bridge, r.Overlay} {
		input.rules = append(input.rules,
			rule(iifname(dev), l4proto(unix.IPPROTO_ICMP, "icmp"), accept),
			rule(iifname(dev), l4proto(unix.IPPROTO_ICMPV6, "ipv6-icmp"), accept),
			rule(iifname(dev), dport(unix.IPPROTO_UDP, "udp", 53), accept),
			rule(iifname(dev), dport(unix.IPPROTO_TCP, "tcp", 53), accept),
		)
	}
	forward := chain{
		name: "forward", hook: nftables.ChainHookForward, hookName: "forward",
		priority: 0, policy: nftables.ChainPolicyDrop,
		rules: []match{
			// First, before the SYN-ACK is accepted as established: both
			// directions then agree on a segment that fits the smaller
			// of the two nodes' overlay MTUs (nodes derive their own).
			rule(clampMSS()),
			rule(ctState(expr.CtStateBitINVALID, "invalid"), drop),
			rule(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED, "established", "related"), accept),
		},
	}
	// Access peers are clients: nothing opens a connection to one, neither
	// a workload nor another access peer (on this node or, relayed, on
	// another). Their own connections are answered by the rule above.
	// One set lookup per family, however many access peers there are.
	for _, s := range access {
		forward.rules = append(forward.rules, rule(oifname(r.Overlay), inetAddrIn("daddr", s), drop))
	}
	forward.rules = append(forward.rules,
		// Bridged between workloads; seen here only with br_netfilter.
		rule(iifname(r.Bridge), oifname(r.Bridge), accept),
		rule(iifname(r.Bridge), oifname(r.Overlay), accept),
		rule(iifname(r.Overlay), oifname(r.Bridge), accept),
		// Relaying between members that cannot reach each other.
		rule(iifname(r.Overlay), oifname(r.Overlay), accept),
	)
	forward.rules = append(forward.rules, egressForward(r)...)
	output := chain{
		name: "output", hook: nftables.ChainHookOutput, hookName: "output",
		priority: 0, policy: nftables.ChainPolicyAccept,
	}
	return table{family: nftables.TableFamilyINet, sets: access,
		chains: append([]chain{rawChain(r, access), input, forward, output}, egressNAT(r)...)}
}

// rawChain exempts from connection tracking what is only forwarded between
// the bridge and the overlay (or relayed overlay to overlay): the forward
// chain passes it by interface alone, so tracking it bought nothing and
// cost a lookup and an entry per flow on the data plane's path. Tracked
// still are packets to the gateway itself (the input chain answers replies
// by state, the resolver's own queries among them), every packet from or
// to an access peer (nothing may open a connection to one: its replies are
// told apart by state) and what the bridge sends anywhere but the overlay:
// the egress's source NAT and its replies need the connection. It runs at
// the raw priority, before conntrack. The access peers' addresses are
// looked up in the sets access (one per family), so every packet pays the
// same whatever their number.
func rawChain(r Rules, access []set) chain {
	raw := chain{
		name: "raw", hook: nftables.ChainHookPrerouting, hookName: "prerouting",
		priority: *nftables.ChainPriorityRaw, policy: nftables.ChainPolicyAccept,
	}
	ret := verdict(expr.VerdictReturn, "")
	for _, s := range access {
		raw.rules = append(raw.rules, rule(inetAddrIn("saddr", s), ret), rule(inetAddrIn("daddr", s), ret))
	}
	raw.rules = append(raw.rules,
		rule(daddrLocal(), ret),
		rule(iifname(r.Bridge), daddrVia(r.Overlay), notrack),
		rule(iifname(r.Overlay), notrack),
	)
	return raw
}

// bridgeTable checks the source of every frame a workload port sends. The
// prerouting chain finds the port's chain by one lookup of the input
// interface in a verdict map, so a frame costs the same on a bridge of one
// port as of hundreds; a frame from a port not in the map meets the
// chain's drop policy. Without ports there is neither map nor rule.
func bridgeTable(r Rules) table {
	pre := chain{
		name: "prerouting", hook: nftables.ChainHookPrerouting, hookName: "prerouting",
		priority: -200, policy: nftables.ChainPolicyDrop,
	}
	t := table{family: nftables.TableFamilyBridge}
	if len(r.Ports) > 0 {
		ports := portsVmap(r.Ports)
		t.sets = []set{ports}
		pre.rules = []match{iifnameVmap(ports)}
	}
	t.chains = []chain{pre}
	for _, p := range r.Ports {
		t.chains = append(t.chains, chain{name: portChain(p.IfName), rules: portRules(p)})
	}
	return t
}

// portChain names the chain of the port on interface ifname.
func portChain(ifname string) string { return "port-" + ifname }

// portRules accepts what a workload may send and drops the rest.
func portRules(p Port) []match {
	var rules []match
	ip, arp, ip6 := etherType(etherTypeIPv4, "ip"), etherType(etherTypeARP, "arp"), etherType(etherTypeIPv6, "ip6")
	// The link-local addresses the port may use: its own when pinned.
	ll := linkLocal
	if mac, err := net.ParseMAC(p.MAC); err == nil { // checked by validate
		ll = single(eui64LinkLocal(mac))
		rules = append(rules,
			rule(etherSaddrNot(mac), drop),
			rule(arp, arpShaNot(mac), drop),
		)
	}
	if p.IPv4.IsValid() {
		rules = append(rules,
			rule(ip, ipSaddr(p.IPv4), accept),
			rule(arp, arpSaddr(p.IPv4), accept),
		)
	}
	na := []match{ip6, icmpv6Type(icmpv6NeighborAdvert, "nd-neighbor-advert")}
	if p.IPv6.IsValid() {
		na = append(na, ndTargetNot(single(p.IPv6)))
	}
	na = append(na, ndTargetNot(ll), drop)
	rules = append(rules,
		rule(ip6, icmpv6Type(icmpv6RouterAdvert, "nd-router-advert"), drop),
		rule(ip6, icmpv6Type(icmpv6Redirect, "nd-redirect"), drop),
		rule(na...),
	)
	if p.IPv6.IsValid() {
		rules = append(rules, rule(ip6, ip6Saddr(single(p.IPv6)), accept))
	}
	rules = append(rules,
		rule(ip6, ip6Saddr(ll), accept),
		rule(ip6, ip6Saddr(single(netip.IPv6Unspecified())), l4proto(unix.IPPROTO_ICMPV6, "ipv6-icmp"), accept),
		rule(drop),
	)
	return rules
}

// familyName is how nft names a table family.
func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyBridge:
		return "bridge"
	}
	return fmt.Sprintf("family-%d", f)
}

// policyName is how nft names a chain policy.
func policyName(p nftables.ChainPolicy) string {
	if p == nftables.ChainPolicyAccept {
		return "accept"
	}
	return "drop"
}

// Render returns a stable, human-readable text of the rules r produces, in
// the style of `nft list ruleset`: every table, chain and rule in the order
// Apply installs them, ports sorted by interface name. It does not check r;
// Apply does.
func Render(r Rules) string {
	r = r.normalized()
	var b strings.Builder
	for _, t := range build(r) {
		renderTable(&b, tableName, t)
	}
	return b.String()
}

// renderTable writes table t, named name, as nft lists it.
func renderTable(b *strings.Builder, name string, t table) {
	fmt.Fprintf(b, "table %s %s {\n", familyName(t.family), name)
	for i, s := range t.sets {
		if i > 0 {
			b.WriteString("\n")
		}
		renderSet(b, s)
	}
	for i, c := range t.chains {
		if i > 0 || len(t.sets) > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(b, "\tchain %s {\n", c.name)
		if c.base() {
			fmt.Fprintf(b, "\t\ttype %s hook %s priority %d; policy %s;\n",
				c.chainType(), c.hookName, c.priority, policyName(c.policy))
		}
		for _, rl := range c.rules {
			fmt.Fprintf(b, "\t\t%s\n", rl.text)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
}

// chainType is c's type, filter unless set.
func (c chain) chainType() nftables.ChainType {
	if c.ctype == "" {
		return nftables.ChainTypeFilter
	}
	return c.ctype
}
