package peers

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// meshPeers is what node1 of a 4-node network (node3 hidden) wants.
func meshPeers() []Peer {
	return []Peer{
		{
			Name: "node2", PublicKey: testKey(2), Keepalive: Keepalive,
			Endpoint:   netip.MustParseAddrPort("198.18.0.2:40002"),
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.20.2.0/24"), netip.MustParsePrefix("fd3c:9a1e:77b2:2::/64")},
		},
		{
			Name: "node3", PublicKey: testKey(3),
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.20.3.0/24"), netip.MustParsePrefix("fd3c:9a1e:77b2:3::/64")},
		},
		{
			Name: "node4", PublicKey: testKey(4), Keepalive: Keepalive,
			Endpoint:   netip.MustParseAddrPort("[2001:db8::4]:40004"),
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.20.4.0/24"), netip.MustParsePrefix("fd3c:9a1e:77b2:4::/64")},
		},
	}
}

var testNames = map[wgtypes.Key]string{
	testKey(1): "node1", testKey(2): "node2", testKey(3): "node3", testKey(4): "node4", testKey(5): "node5",
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name string
		// edit turns the peers the device has into the desired ones.
		edit func(ps []Peer) []Peer
		want string
	}{
		{
			name: "no change",
			edit: func(ps []Peer) []Peer { return ps },
			want: "",
		},
		{
			name: "add one",
			edit: func(ps []Peer) []Peer {
				return append(ps, Peer{
					Name: "node5", PublicKey: testKey(5), Keepalive: Keepalive,
					Endpoint:   netip.MustParseAddrPort("198.18.0.5:40005"),
					AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.20.5.0/24"), netip.MustParsePrefix("fd3c:9a1e:77b2:5::/64")},
				})
			},
			want: "node5 add endpoint=198.18.0.5:40005 keepalive=25s replace-allowed allowed=10.20.5.0/24,fd3c:9a1e:77b2:5::/64\n",
		},
		{
			name: "add a hidden one",
			edit: func(ps []Peer) []Peer {
				return append(ps, Peer{Name: "node5", PublicKey: testKey(5),
					AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.20.5.0/24")}})
			},
			want: "node5 add keepalive=0s replace-allowed allowed=10.20.5.0/24\n",
		},
		{
			name: "remove one",
			edit: func(ps []Peer) []Peer { return append(ps[:1], ps[2:]...) },
			want: "node3 remove\n",
		},
		{
			name: "remove all",
			edit: func([]Peer) []Peer { return nil },
			want: "node2 remove\nnode3 remove\nnode4 remove\n",
		},
		{
			name: "endpoint change",
			edit: func(ps []Peer) []Peer {
				ps[2].Endpoint = netip.MustParseAddrPort("198.18.0.44:40004")
				return ps
			},
			want: "node4 update endpoint=198.18.0.44:40004\n",
		},
		{
			name: "allowed IP change",
			edit: func(ps []Peer) []Peer {
				ps[0].AllowedIPs = append(ps[0].AllowedIPs[:1:1], netip.MustParsePrefix("10.20.3.0/24"), netip.MustParsePrefix("fd3c:9a1e:77b2:2::/64"))
				ps[1].AllowedIPs = ps[1].AllowedIPs[1:]
				return ps
			},
			want: "node2 update replace-allowed allowed=10.20.2.0/24,10.20.3.0/24,fd3c:9a1e:77b2:2::/64\n" +
				"node3 update replace-allowed allowed=fd3c:9a1e:77b2:3::/64\n",
		},
		{
			name: "keepalive change",
			edit: func(ps []Peer) []Peer {
				ps[0].Keepalive = 0
				return ps
			},
			want: "node2 update keepalive=0s\n",
		},
		{
			name: "hidden peer becomes public",
			edit: func(ps []Peer) []Peer {
				ps[1].Endpoint = netip.MustParseAddrPort("198.18.0.3:40003")
				ps[1].Keepalive = Keepalive
				return ps
			},
			want: "node3 update endpoint=198.18.0.3:40003 keepalive=25s\n",
		},
		{
			name: "public peer becomes hidden: the learned endpoint stays",
			edit: func(ps []Peer) []Peer {
				ps[0].Endpoint = netip.AddrPort{}
				ps[0].Keepalive = 0
				return ps
			},
			want: "node2 update keepalive=0s\n",
		},
		{
			name: "add, change and remove at once",
			edit: func(ps []Peer) []Peer {
				ps[2].Endpoint = netip.MustParseAddrPort("[2001:db8::44]:40004")
				return append([]Peer{{Name: "node1", PublicKey: testKey(1)}}, ps[0], ps[2])
			},
			want: "node1 add keepalive=0s replace-allowed allowed=-\n" +
				"node4 update endpoint=[2001:db8::44]:40004\n" +
				"node3 remove\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := &fakeDevice{}
			dev.apply(Diff(meshPeers(), nil))
			require.Empty(t, deviceMatches(dev.snapshot(), meshPeers()))

			desired := tt.edit(meshPeers())
			cfg := Diff(desired, dev.snapshot())
			assert.Equal(t, tt.want, renderConfig(cfg, testNames))
			if tt.want == "" {
				assert.Empty(t, cfg.Peers)
			}

			// Applying the config gives the desired peers, and applying
			// the next diff changes nothing.
			dev.apply(cfg)
			assert.Empty(t, deviceMatches(dev.snapshot(), desired))
			again := Diff(desired, dev.snapshot())
			assert.Empty(t, again.Peers)
			dev.apply(again)
			assert.Empty(t, deviceMatches(dev.snapshot(), desired))
		})
	}
}

func TestDiffFromEmptyDevice(t *testing.T) {
	cfg := Diff(meshPeers(), nil)
	assert.Equal(t,
		"node2 add endpoint=198.18.0.2:40002 keepalive=25s replace-allowed allowed=10.20.2.0/24,fd3c:9a1e:77b2:2::/64\n"+
			"node3 add keepalive=0s replace-allowed allowed=10.20.3.0/24,fd3c:9a1e:77b2:3::/64\n"+
			"node4 add endpoint=[2001:db8::4]:40004 keepalive=25s replace-allowed allowed=10.20.4.0/24,fd3c:9a1e:77b2:4::/64\n",
		renderConfig(cfg, testNames))
	assert.Empty(t, Diff(nil, nil).Peers)
}

// TestDiffReadsDeviceForms checks that the forms a device reports (IPv4 in
// 16-byte form, any order, a learned endpoint on a hidden peer, statistics)
// are not mistaken for changes.
func TestDiffReadsDeviceForms(t *testing.T) {
	v4in16 := func(s string) net.IPNet {
		_, n, err := net.ParseCIDR(s)
		require.NoError(t, err)
		n.IP = n.IP.To16()
		return *n
	}
	v4mask16 := func(s string) net.IPNet {
		n := v4in16(s)
		ones, _ := n.Mask.Size()
		n.Mask = net.CIDRMask(96+ones, 128)
		return n
	}
	current := []wgtypes.Peer{
		{
			PublicKey:                   testKey(2),
			Endpoint:                    &net.UDPAddr{IP: net.ParseIP("198.18.0.2"), Port: 40002},
			PersistentKeepaliveInterval: Keepalive,
			AllowedIPs:                  []net.IPNet{v4in16("fd3c:9a1e:77b2:2::/64"), v4in16("10.20.2.0/24")},
			LastHandshakeTime:           time.Now(),
			ReceiveBytes:                100,
		},
		{
			PublicKey:  testKey(3),
			Endpoint:   &net.UDPAddr{IP: net.ParseIP("198.18.99.3"), Port: 5555},
			AllowedIPs: []net.IPNet{v4mask16("10.20.3.0/24"), v4in16("fd3c:9a1e:77b2:3::/64")},
		},
		{
			PublicKey:                   testKey(4),
			Endpoint:                    &net.UDPAddr{IP: net.ParseIP("2001:db8::4"), Port: 40004},
			PersistentKeepaliveInterval: Keepalive,
			AllowedIPs:                  []net.IPNet{v4in16("10.20.4.0/24"), v4in16("fd3c:9a1e:77b2:4::/64"), v4in16("10.20.4.0/24")},
		},
	}
	assert.Empty(t, Diff(meshPeers(), current).Peers)
}

func TestDevicePrefix(t *testing.T) {
	tests := []struct {
		name string
		in   net.IPNet
		want string
	}{
		{"ipv4", net.IPNet{IP: net.IP{10, 20, 1, 0}, Mask: net.CIDRMask(24, 32)}, "10.20.1.0/24"},
		{"ipv4 in 16 bytes", net.IPNet{IP: net.ParseIP("10.20.1.0"), Mask: net.CIDRMask(24, 32)}, "10.20.1.0/24"},
		{"ipv4 with a 16-byte mask", net.IPNet{IP: net.ParseIP("10.20.1.0"), Mask: net.CIDRMask(120, 128)}, "10.20.1.0/24"},
		{"4-byte ipv4 with a 16-byte mask", net.IPNet{IP: net.IP{10, 20, 1, 0}, Mask: net.CIDRMask(120, 128)}, "10.20.1.0/24"},
		{"host bits", net.IPNet{IP: net.IP{10, 20, 1, 7}, Mask: net.CIDRMask(24, 32)}, "10.20.1.0/24"},
		{"ipv6", net.IPNet{IP: net.ParseIP("fd00::1"), Mask: net.CIDRMask(64, 128)}, "fd00::/64"},
		{"no address", net.IPNet{Mask: net.CIDRMask(24, 32)}, "invalid Prefix"},
		{"non-canonical mask", net.IPNet{IP: net.IP{10, 0, 0, 0}, Mask: net.IPMask{255, 0, 255, 0}}, "invalid Prefix"},
		{"ipv6 with a 4-byte mask", net.IPNet{IP: net.ParseIP("fd00::1"), Mask: net.CIDRMask(24, 32)}, "invalid Prefix"},
		{"short 16-byte mask on ipv4", net.IPNet{IP: net.IP{10, 0, 0, 0}, Mask: net.CIDRMask(64, 128)}, "invalid Prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, devicePrefix(tt.in).String())
		})
	}
}
