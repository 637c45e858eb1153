package firewall

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
)

// inetGolden is the inet table of every rule set with bridge br0 and
// overlay wg0.
const inetGolden = `table inet znet {
	chain raw {
		type filter hook prerouting priority -300; policy accept;
		fib daddr type local return
		iifname "br0" fib daddr oifname "wg0" notrack
		iifname "wg0" notrack
	}

	chain input {
		type filter hook input priority 0; policy drop;
		iifname "lo" accept
		ct state established,related accept
		ct state invalid drop
		iifname "br0" meta l4proto icmp accept
		iifname "br0" meta l4proto ipv6-icmp accept
		iifname "br0" udp dport 53 accept
		iifname "br0" tcp dport 53 accept
		iifname "wg0" meta l4proto icmp accept
		iifname "wg0" meta l4proto ipv6-icmp accept
		iifname "wg0" udp dport 53 accept
		iifname "wg0" tcp dport 53 accept
	}

	chain forward {
		type filter hook forward priority 0; policy drop;
		tcp flags syn tcp option maxseg size set rt mtu
		ct state invalid drop
		ct state established,related accept
		iifname "br0" oifname "br0" accept
		iifname "br0" oifname "wg0" accept
		iifname "wg0" oifname "br0" accept
		iifname "wg0" oifname "wg0" accept
	}

	chain output {
		type filter hook output priority 0; policy accept;
	}
}
`

func TestRender(t *testing.T) {
	tests := []struct {
		name  string
		rules Rules
		want  string
	}{
		{
			name:  "no ports",
			rules: Rules{Bridge: "br0", Overlay: "wg0"},
			want: inetGolden + `table bridge znet {
	chain prerouting {
		type filter hook prerouting priority -200; policy drop;
	}
}
`,
		},
		{
			name: "ports sorted, one without IPv6, one without addresses",
			rules: Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{
				{IfName: "veth-b", IPv4: netip.MustParseAddr("10.20.1.3"), IPv6: netip.MustParseAddr("fd00:20:1::3")},
				{IfName: "veth-a", IPv4: netip.MustParseAddr("::ffff:10.20.1.2")},
				{IfName: "veth-c"},
			}},
			want: inetGolden + `table bridge znet {
	map ports {
		type ifname : verdict
		elements = { "veth-a" : jump port-veth-a,
			     "veth-b" : jump port-veth-b,
			     "veth-c" : jump port-veth-c }
	}

	chain prerouting {
		type filter hook prerouting priority -200; policy drop;
		iifname vmap @ports
	}

	chain port-veth-a {
		ether type ip ip saddr 10.20.1.2 accept
		ether type arp arp saddr ip 10.20.1.2 accept
		ether type ip6 icmpv6 type nd-router-advert drop
		ether type ip6 icmpv6 type nd-redirect drop
		ether type ip6 icmpv6 type nd-neighbor-advert icmpv6 target != fe80::/10 drop
		ether type ip6 ip6 saddr fe80::/10 accept
		ether type ip6 ip6 saddr :: meta l4proto ipv6-icmp accept
		drop
	}

	chain port-veth-b {
		ether type ip ip saddr 10.20.1.3 accept
		ether type arp arp saddr ip 10.20.1.3 accept
		ether type ip6 icmpv6 type nd-router-advert drop
		ether type ip6 icmpv6 type nd-redirect drop
		ether type ip6 icmpv6 type nd-neighbor-advert icmpv6 target != fd00:20:1::3 icmpv6 target != fe80::/10 drop
		ether type ip6 ip6 saddr fd00:20:1::3 accept
		ether type ip6 ip6 saddr fe80::/10 accept
		ether type ip6 ip6 saddr :: meta l4proto ipv6-icmp accept
		drop
	}

	chain port-veth-c {
		ether type ip6 icmpv6 type nd-router-advert drop
		ether type ip6 icmpv6 type nd-redirect drop
		ether type ip6 icmpv6 type nd-neighbor-advert icmpv6 target != fe80::/10 drop
		ether type ip6 ip6 saddr fe80::/10 accept
		ether type ip6 ip6 saddr :: meta l4proto ipv6-icmp accept
		drop
	}
}
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Render(tt.rules))
		})
	}
}

func TestRenderAccessPeers(t *testing.T) {
	r := Rules{Bridge: "br0", Overlay: "wg0", AccessPeers: []netip.Addr{
		netip.MustParseAddr("fd00:20:1::9"), netip.MustParseAddr("10.20.1.10"),
		netip.MustParseAddr("::ffff:10.20.1.9"), netip.MustParseAddr("10.20.1.9"),
	}}
	sets := `table inet znet {
	set access4 {
		type ipv4_addr
		elements = { 10.20.1.9,
			     10.20.1.10 }
	}

	set access6 {
		type ipv6_addr
		elements = { fd00:20:1::9 }
	}

	chain raw {
`
	assert.True(t, strings.HasPrefix(Render(r), sets), "sorted, unmapped, once each, one set per family:\n%s", Render(r))
	want := `		ct state invalid drop
		ct state established,related accept
		oifname "wg0" meta nfproto ipv4 ip daddr @access4 drop
		oifname "wg0" meta nfproto ipv6 ip6 daddr @access6 drop
		iifname "br0" oifname "br0" accept
`
	assert.Contains(t, Render(r), want, "one lookup per family, before any accept by interface")
	raw := `	chain raw {
		type filter hook prerouting priority -300; policy accept;
		meta nfproto ipv4 ip saddr @access4 return
		meta nfproto ipv4 ip daddr @access4 return
		meta nfproto ipv6 ip6 saddr @access6 return
		meta nfproto ipv6 ip6 daddr @access6 return
		fib daddr type local return
		iifname "br0" fib daddr oifname "wg0" notrack
		iifname "wg0" notrack
	}
`
	assert.Contains(t, Render(r), raw, "access peers' packets stay tracked: the forward chain tells their replies by state")

	r.AccessPeers = r.AccessPeers[:1]
	assert.NotContains(t, Render(r), "access4", "a family without access peers has no set and no rule")
	assert.Contains(t, Render(r), `oifname "wg0" meta nfproto ipv6 ip6 daddr @access6 drop`)
}

func TestRenderIsStable(t *testing.T) {
	p := func(name, v4 string) Port { return Port{IfName: name, IPv4: netip.MustParseAddr(v4)} }
	r := Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{p("c", "10.0.0.3"), p("a", "10.0.0.1"), p("b", "10.0.0.2")}}
	shuffled := Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{p("b", "10.0.0.2"), p("c", "10.0.0.3"), p("a", "10.0.0.1")}}
	assert.Equal(t, Render(r), Render(shuffled))
	assert.Equal(t, "c", r.Ports[0].IfName, "Render leaves the caller's slice alone")
}

// TestRenderMatchesExpressions checks that every rule's text and
// expressions come from the same matches: each rule ends in exactly one
// verdict, and its text ends with that verdict's word, or (the MSS clamp)
// in a write of the TCP option, and its text ends with that assignment, or
// in notrack, or in a verdict map's lookup, and its text ends with
// "vmap @" and the map's name. Every set a rule looks up is one of its
// table's sets, by name and by ID.
func TestRenderMatchesExpressions(t *testing.T) {
	r := Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{
		{IfName: "veth-a", IPv4: netip.MustParseAddr("10.20.1.2"), IPv6: netip.MustParseAddr("fd00:20:1::2")},
	}, AccessPeers: []netip.Addr{netip.MustParseAddr("10.20.1.9"), netip.MustParseAddr("fd00:20:1::9")}}
	for _, tb := range build(r.normalized()) {
		sets := map[string]uint32{}
		for _, s := range tb.sets {
			sets[s.name] = s.id
		}
		for _, ch := range tb.chains {
			for _, rl := range ch.rules {
				t.Run(familyName(tb.family)+"/"+ch.name+"/"+rl.text, func(t *testing.T) {
					require.NotEmpty(t, rl.exprs)
					last := rl.exprs[len(rl.exprs)-1]
					v := verdictOf(last)
					if w, ok := last.(*expr.Exthdr); ok && w.SourceRegister != 0 {
						v = "tcp option maxseg size set rt mtu"
					}
					if _, ok := last.(*expr.Notrack); ok {
						v = "notrack"
					}
					if l, ok := last.(*expr.Lookup); ok && l.IsDestRegSet && l.DestRegister == 0 {
						v = "vmap @" + l.SetName
					}
					require.NotEmpty(t, v, "last expression is a verdict or a write")
					assert.True(t, strings.HasSuffix(rl.text, v), "%q ends with %q", rl.text, v)
					for _, e := range rl.exprs[:len(rl.exprs)-1] {
						assert.Empty(t, verdictOf(e), "only the last expression is a verdict")
					}
					for _, e := range rl.exprs {
						if l, ok := e.(*expr.Lookup); ok {
							id, found := sets[l.SetName]
							assert.True(t, found && id == l.SetID, "%s (ID %d) is a set of the table", l.SetName, l.SetID)
							assert.Contains(t, rl.text, "@"+l.SetName)
						}
					}
				})
			}
		}
	}
}

func TestInvalidRules(t *testing.T) {
	ok := Port{IfName: "veth-a", IPv4: netip.MustParseAddr("10.20.1.2"), IPv6: netip.MustParseAddr("fd00:20:1::2")}
	tests := []struct {
		name  string
		rules Rules
	}{
		{"no bridge", Rules{Overlay: "wg0"}},
		{"no overlay", Rules{Bridge: "br0"}},
		{"bridge is overlay", Rules{Bridge: "wg0", Overlay: "wg0"}},
		{"name too long", Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{{IfName: "a-very-long-name"}}}},
		{"name with slash", Rules{Bridge: "br/0", Overlay: "wg0"}},
		{"empty port name", Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{{}}}},
		{"port twice", Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{ok, ok}}},
		{"port is the bridge", Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{{IfName: "br0"}}}},
		{"IPv6 as IPv4", Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{{IfName: "p", IPv4: netip.MustParseAddr("fd00::1")}}}},
		{"IPv4 as IPv6", Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{{IfName: "p", IPv6: netip.MustParseAddr("10.0.0.1")}}}},
		{"mapped IPv4 as IPv6", Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{{IfName: "p", IPv6: netip.MustParseAddr("::ffff:10.0.0.1")}}}},
		{"IPv6 with zone", Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{{IfName: "p", IPv6: netip.MustParseAddr("fd00::1%eth0")}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Checked before the namespace handle is used at all.
			require.ErrorIs(t, Apply(netns.None(), tt.rules), ErrInvalid)
		})
	}
	t.Run("valid rules, no namespace", func(t *testing.T) {
		r := Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{ok}}
		require.NoError(t, r.normalized().validate())
		require.ErrorIs(t, Apply(netns.None(), r), ErrInvalid)
		require.ErrorIs(t, Remove(netns.None()), ErrInvalid)
		require.ErrorIs(t, Remove(0), ErrInvalid, "fd 0 is never taken for the caller's own namespace")
	})
}

// verdictOf returns the text of e if it is a verdict, else "".
func verdictOf(e expr.Any) string {
	v, ok := e.(*expr.Verdict)
	if !ok {
		return ""
	}
	return verdict(v.Kind, v.Chain).text
}
