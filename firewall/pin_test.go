package firewall

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
)

func TestRenderPinnedPort(t *testing.T) {
	// Upper case is rendered (and installed) as the same port.
	mac := "02:11:22:33:44:55"
	r := Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{
		{IfName: "zt1", IPv4: netip.MustParseAddr("10.20.1.5"), IPv6: netip.MustParseAddr("fd00:20:1::5"), MAC: strings.ToUpper(mac)},
	}}
	want := `	chain port-zt1 {
		ether saddr != 02:11:22:33:44:55 drop
		ether type arp arp saddr ether != 02:11:22:33:44:55 drop
		ether type ip ip saddr 10.20.1.5 accept
		ether type arp arp saddr ip 10.20.1.5 accept
		ether type ip6 icmpv6 type nd-router-advert drop
		ether type ip6 icmpv6 type nd-redirect drop
		ether type ip6 icmpv6 type nd-neighbor-advert icmpv6 target != fd00:20:1::5 icmpv6 target != fe80::11:22ff:fe33:4455 drop
		ether type ip6 ip6 saddr fd00:20:1::5 accept
		ether type ip6 ip6 saddr fe80::11:22ff:fe33:4455 accept
		ether type ip6 ip6 saddr :: meta l4proto ipv6-icmp accept
		drop
	}
`
	assert.Contains(t, Render(r), want)
}

func TestEUI64LinkLocal(t *testing.T) {
	tests := []struct{ mac, want string }{
		// The universal/local bit flips: locally administered 02 becomes 00.
		{"02:11:22:33:44:55", "fe80::11:22ff:fe33:4455"},
		// A vendor (universal) MAC gets the bit set.
		{"52:54:00:12:34:56", "fe80::5054:ff:fe12:3456"},
		{"00:00:00:00:00:01", "fe80::200:ff:fe00:1"},
	}
	for _, tt := range tests {
		t.Run(tt.mac, func(t *testing.T) {
			mac, err := net.ParseMAC(tt.mac)
			require.NoError(t, err)
			assert.Equal(t, netip.MustParseAddr(tt.want), eui64LinkLocal(mac))
		})
	}
}

func TestInvalidMAC(t *testing.T) {
	for name, mac := range map[string]string{
		"multicast": "01:00:5e:00:00:01",
		"too long":  "02:00:00:00:00:00:00:01",
		"not a MAC": "02:00",
	} {
		t.Run(name, func(t *testing.T) {
			r := Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{{IfName: "p", MAC: mac}}}
			require.ErrorIs(t, Apply(netns.None(), r), ErrInvalid)
		})
	}
}
