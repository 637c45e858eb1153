package firewall

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
)

var egressRules = Rules{Bridge: "br0", Overlay: "wg0", Egress: &Egress{
	IfName: "egress",
	Source: netip.MustParseAddr("169.254.202.108"),
	// Unsorted, repeated and with host bits: normalized away.
	Blocked: []netip.Prefix{
		netip.MustParsePrefix("198.18.0.7/24"),
		netip.MustParsePrefix("198.18.0.1/32"),
		netip.MustParsePrefix("198.18.0.0/24"),
	},
}}

// egressForwardGolden is the forward chain and the NAT chain an egress
// network's namespace gets.
const egressForwardGolden = `	chain forward {
		type filter hook forward priority 0; policy drop;
		tcp flags syn tcp option maxseg size set rt mtu
		ct state invalid drop
		ct state established,related accept
		iifname "br0" oifname "br0" accept
		iifname "br0" oifname "wg0" accept
		iifname "wg0" oifname "br0" accept
		iifname "wg0" oifname "wg0" accept
		oifname "egress" meta nfproto ipv4 ip daddr 0.0.0.0/8 drop
		oifname "egress" meta nfproto ipv4 ip daddr 10.0.0.0/8 drop
		oifname "egress" meta nfproto ipv4 ip daddr 100.64.0.0/10 drop
		oifname "egress" meta nfproto ipv4 ip daddr 127.0.0.0/8 drop
		oifname "egress" meta nfproto ipv4 ip daddr 169.254.0.0/16 drop
		oifname "egress" meta nfproto ipv4 ip daddr 172.16.0.0/12 drop
		oifname "egress" meta nfproto ipv4 ip daddr 192.168.0.0/16 drop
		oifname "egress" meta nfproto ipv4 ip daddr 224.0.0.0/3 drop
		oifname "egress" meta nfproto ipv6 ip6 daddr fc00::/7 drop
		oifname "egress" meta nfproto ipv6 ip6 daddr fe80::/10 drop
		oifname "egress" meta nfproto ipv6 ip6 daddr ::/127 drop
		oifname "egress" meta nfproto ipv6 ip6 daddr ::ffff:0.0.0.0/96 drop
		oifname "egress" meta nfproto ipv6 ip6 daddr 64:ff9b:1::/48 drop
		oifname "egress" meta nfproto ipv6 ip6 daddr 100::/64 drop
		oifname "egress" meta nfproto ipv6 ip6 daddr 2002::/16 drop
		oifname "egress" meta nfproto ipv6 ip6 daddr fec0::/10 drop
		oifname "egress" meta nfproto ipv6 ip6 daddr ff00::/8 drop
		oifname "egress" meta nfproto ipv4 ip daddr 198.18.0.0/24 drop
		oifname "egress" meta nfproto ipv4 ip daddr 198.18.0.1 drop
		iifname "br0" oifname "egress" meta nfproto ipv4 accept
	}

	chain output {
		type filter hook output priority 0; policy accept;
	}

	chain egress-nat {
		type nat hook postrouting priority 100; policy accept;
		oifname "egress" meta nfproto ipv4 snat ip to 169.254.202.108
	}
}
`

func TestRenderEgress(t *testing.T) {
	got := Render(egressRules)
	start := strings.Index(got, "\tchain forward {")
	end := strings.Index(got, "table bridge")
	require.True(t, start > 0 && end > start, "%s", got)
	assert.Equal(t, egressForwardGolden, got[start:end])
	// Without egress the namespace has no way out: no rule names a veth
	// other than the bridge and the overlay, and no NAT chain.
	plain := Render(Rules{Bridge: "br0", Overlay: "wg0"})
	assert.NotContains(t, plain, "egress")
	assert.NotContains(t, plain, "nat")
}

// egress6Rules is egressRules on a node with global IPv6.
func egress6Rules() Rules {
	r := egressRules
	e := *r.Egress
	e.Source6 = netip.MustParseAddr("fd5a:6e65:6567::ca6c")
	r.Egress = &e
	return r
}

// TestRenderEgress6: with an IPv6 transfer address the bridge may also
// open IPv6 flows through the veth, after the same drops, rewritten to it.
func TestRenderEgress6(t *testing.T) {
	got := Render(egress6Rules())
	want := strings.Replace(egressForwardGolden,
		"\t\tiifname \"br0\" oifname \"egress\" meta nfproto ipv4 accept\n",
		"\t\tiifname \"br0\" oifname \"egress\" meta nfproto ipv4 accept\n"+
			"\t\tiifname \"br0\" oifname \"egress\" meta nfproto ipv6 accept\n", 1)
	want = strings.Replace(want,
		"\t\toifname \"egress\" meta nfproto ipv4 snat ip to 169.254.202.108\n",
		"\t\toifname \"egress\" meta nfproto ipv4 snat ip to 169.254.202.108\n"+
			"\t\toifname \"egress\" meta nfproto ipv6 snat ip6 to fd5a:6e65:6567::ca6c\n", 1)
	require.NotEqual(t, egressForwardGolden, want)
	start := strings.Index(got, "\tchain forward {")
	end := strings.Index(got, "table bridge")
	require.True(t, start > 0 && end > start, "%s", got)
	assert.Equal(t, want, got[start:end])
}

func TestRenderUplink6(t *testing.T) {
	links := []EgressLink{{IfName: "zea", Source: netip.MustParseAddr("169.254.202.108"), Source6: netip.MustParseAddr("fd5a:6e65:6567::ca6c")}}
	want := `table inet znet-egress {
	chain input {
		type filter hook input priority 0; policy accept;
		iifname "zea" drop
	}

	chain forward {
		type filter hook forward priority 0; policy accept;
		iifname "zea" meta nfproto ipv4 ip saddr != 169.254.202.108 drop
		iifname "zea" meta nfproto ipv6 ip6 saddr != fd5a:6e65:6567::ca6c drop
		oifname "zea" ct state established,related accept
		oifname "zea" drop
	}

	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		meta nfproto ipv4 ip saddr 169.254.202.108 masquerade
		meta nfproto ipv6 ip6 saddr fd5a:6e65:6567::ca6c masquerade
	}
}
`
	assert.Equal(t, want, RenderUplink(links))
}

func TestRenderUplink(t *testing.T) {
	links := []EgressLink{
		{IfName: "zeb", Source: netip.MustParseAddr("169.254.202.109")},
		{IfName: "zea", Source: netip.MustParseAddr("::ffff:169.254.202.108")},
	}
	want := `table inet znet-egress {
	chain input {
		type filter hook input priority 0; policy accept;
		iifname "zea" drop
		iifname "zeb" drop
	}

	chain forward {
		type filter hook forward priority 0; policy accept;
		iifname "zea" meta nfproto ipv4 ip saddr != 169.254.202.108 drop
		iifname "zea" meta nfproto ipv6 drop
		oifname "zea" ct state established,related accept
		oifname "zea" drop
		iifname "zeb" meta nfproto ipv4 ip saddr != 169.254.202.109 drop
		iifname "zeb" meta nfproto ipv6 drop
		oifname "zeb" ct state established,related accept
		oifname "zeb" drop
	}

	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		meta nfproto ipv4 ip saddr 169.254.202.108 masquerade
		meta nfproto ipv4 ip saddr 169.254.202.109 masquerade
	}
}
`
	assert.Equal(t, want, RenderUplink(links))
}

func TestEgressInvalid(t *testing.T) {
	src := netip.MustParseAddr("169.254.1.1")
	tests := []struct {
		name  string
		rules Rules
		links []EgressLink
	}{
		{name: "egress without name", rules: Rules{Bridge: "br0", Overlay: "wg0", Egress: &Egress{Source: src}}},
		{name: "egress named as the bridge", rules: Rules{Bridge: "br0", Overlay: "wg0", Egress: &Egress{IfName: "br0", Source: src}}},
		{name: "egress source IPv6", rules: Rules{Bridge: "br0", Overlay: "wg0", Egress: &Egress{IfName: "e", Source: netip.MustParseAddr("fd00::1")}}},
		{name: "egress blocked invalid", rules: Rules{Bridge: "br0", Overlay: "wg0", Egress: &Egress{IfName: "e", Source: src, Blocked: []netip.Prefix{{}}}}},
		{name: "egress source6 IPv4", rules: Rules{Bridge: "br0", Overlay: "wg0", Egress: &Egress{IfName: "e", Source: src, Source6: src}}},
		{name: "link source6 IPv4", links: []EgressLink{{IfName: "zea", Source: src, Source6: netip.MustParseAddr("169.254.1.2")}}},
		{name: "two links one source6", links: []EgressLink{
			{IfName: "zea", Source: src, Source6: netip.MustParseAddr("fd00::1")},
			{IfName: "zeb", Source: netip.MustParseAddr("169.254.1.2"), Source6: netip.MustParseAddr("fd00::1")},
		}},
		{name: "link without source", links: []EgressLink{{IfName: "zea"}}},
		{name: "two links one source", links: []EgressLink{{IfName: "zea", Source: src}, {IfName: "zeb", Source: src}}},
		{name: "link name too long", links: []EgressLink{{IfName: "ze0123456789abcdef", Source: src}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A valid fd is never reached: validation comes first.
			if tt.links != nil {
				require.ErrorIs(t, ApplyUplink(1, tt.links), ErrInvalid)
				return
			}
			require.ErrorIs(t, Apply(1, tt.rules), ErrInvalid)
		})
	}
}

func TestApplyUplinkTwiceAndRemove(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newNS(t, "zt-fw-"+testutil.RandomHex(t, 4))
	one := []EgressLink{{IfName: "zea", Source: netip.MustParseAddr("169.254.1.1")}}
	two := append([]EgressLink{{IfName: "zeb", Source: netip.MustParseAddr("169.254.1.2")}}, one...)
	steps := []struct {
		name  string
		links []EgressLink
		want  []string
	}{
		{"none at first", nil, nil},
		{"one", one, []string{"inet input 1", "inet forward 4", "inet postrouting 1"}},
		{"two", two, []string{"inet input 2", "inet forward 8", "inet postrouting 2"}},
		{"two again", two, []string{"inet input 2", "inet forward 8", "inet postrouting 2"}},
		{"back to one", one, []string{"inet input 1", "inet forward 4", "inet postrouting 1"}},
		{"last goes: table gone", nil, nil},
		{"none again", nil, nil},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			err := ApplyUplink(n.ns, s.links)
			require.NoError(t, err)
			assert.ElementsMatch(t, s.want, kernelChainsOf(t, n, uplinkTable))
		})
	}
}

// TestKernelReadsEgress checks through nft that the NAT and address
// expressions mean what Render says.
func TestKernelReadsEgress(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (apt-get install nftables)")
	}
	n := newNS(t, "zt-fw-"+testutil.RandomHex(t, 4))
	mustApply(t, n, egress6Rules())
	require.NoError(t, ApplyUplink(n.ns, []EgressLink{
		{IfName: "zea", Source: netip.MustParseAddr("169.254.202.108"), Source6: netip.MustParseAddr("fd5a:6e65:6567::ca6c")},
	}))
	out, err := exec.Command("ip", "netns", "exec", n.name, "nft", "list", "ruleset").CombinedOutput()
	require.NoError(t, err, "%s", out)
	listing := string(out)
	t.Logf("nft list ruleset:\n%s", listing)
	for _, w := range []string{
		`oifname "egress" ip daddr 10.0.0.0/8 drop`,
		`oifname "egress" ip daddr 198.18.0.1 drop`,
		`oifname "egress" ip6 daddr fc00::/7 drop`,
		`iifname "br0" oifname "egress" meta nfproto ipv4 accept`,
		`type nat hook postrouting priority srcnat; policy accept;`,
		`oifname "egress" meta nfproto ipv4 snat ip to 169.254.202.108`,
		`table inet znet-egress {`,
		`iifname "zea" ip saddr != 169.254.202.108 drop`,
		`oifname "zea" ct state established,related accept`,
		`ip saddr 169.254.202.108 masquerade`,
		`oifname "egress" ip6 daddr ff00::/8 drop`,
		`iifname "br0" oifname "egress" meta nfproto ipv6 accept`,
		`oifname "egress" meta nfproto ipv6 snat ip6 to fd5a:6e65:6567::ca6c`,
		`iifname "zea" ip6 saddr != fd5a:6e65:6567::ca6c drop`,
		`ip6 saddr fd5a:6e65:6567::ca6c masquerade`,
	} {
		assert.Contains(t, listing, w)
	}
}
