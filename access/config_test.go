package access

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
)

var (
	deviceKey = apitest.Key(7) // the access peer's private key in the tests
	nodeKey   = apitest.Key(1) // the node's public key in the tests
)

// designConfig is the config of DESIGN.md's example.
func designConfig() Config {
	return Config{
		PrivateKey:          deviceKey,
		Addresses:           []netip.Prefix{netip.MustParsePrefix("10.20.1.200/32"), netip.MustParsePrefix("fd3c:9a1e:77b2:1::c8/128")},
		DNS:                 []string{"10.20.1.1", "shop.internal"},
		MTU:                 1420,
		PeerPublicKey:       nodeKey,
		Endpoint:            "198.18.0.1:40001",
		AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd3c:9a1e:77b2::/48")},
		PersistentKeepalive: 25,
	}
}

// designGrant is what the daemon answers for DESIGN.md's example.
func designGrant() api.AccessGrant {
	return api.AccessGrant{
		AccessPeer: api.AccessPeer{
			Name: "alice", PublicKey: apitest.Key(9),
			IPv4: netip.MustParseAddr("10.20.1.200"), IPv6: netip.MustParseAddr("fd3c:9a1e:77b2:1::c8"),
		},
		Network:       "shop",
		NodePublicKey: nodeKey,
		Endpoint:      "198.18.0.1:40001",
		IPRange:       netip.MustParsePrefix("10.20.0.0/16"),
		IPv6Range:     netip.MustParsePrefix("fd3c:9a1e:77b2::/48"),
		DNS:           netip.MustParseAddr("10.20.1.1"),
		MTU:           1420,
	}
}

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{
			name: "DESIGN.md example",
			c:    designConfig(),
			want: `[Interface]
PrivateKey = ` + deviceKey + `
Address = 10.20.1.200/32, fd3c:9a1e:77b2:1::c8/128
DNS = 10.20.1.1, shop.internal
MTU = 1420

[Peer]
PublicKey = ` + nodeKey + `
Endpoint = 198.18.0.1:40001
AllowedIPs = 10.20.0.0/16, fd3c:9a1e:77b2::/48
PersistentKeepalive = 25
`,
		},
		{
			name: "the user keeps their key",
			c:    func() Config { c := designConfig(); c.PrivateKey = ""; return c }(),
			want: `[Interface]
Address = 10.20.1.200/32, fd3c:9a1e:77b2:1::c8/128
DNS = 10.20.1.1, shop.internal
MTU = 1420

[Peer]
PublicKey = ` + nodeKey + `
Endpoint = 198.18.0.1:40001
AllowedIPs = 10.20.0.0/16, fd3c:9a1e:77b2::/48
PersistentKeepalive = 25
`,
		},
		{
			name: "only the peer's key",
			c:    Config{PeerPublicKey: nodeKey},
			want: "[Interface]\n\n[Peer]\nPublicKey = " + nodeKey + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.c.Validate())
			assert.Equal(t, tt.want, tt.c.Render())
		})
	}
}

func TestFromGrant(t *testing.T) {
	tests := []struct {
		name       string
		grant      func(g *api.AccessGrant)
		privateKey string
		override   string
		want       func(c *Config)
	}{
		{name: "as granted, with the CLI's key", privateKey: deviceKey},
		{name: "the user's own key", want: func(c *Config) { c.PrivateKey = "" }},
		{name: "host only keeps the port", privateKey: deviceKey, override: "vpn.example.com",
			want: func(c *Config) { c.Endpoint = "vpn.example.com:40001" }},
		{name: "IPv4 host only", privateKey: deviceKey, override: "198.18.7.7",
			want: func(c *Config) { c.Endpoint = "198.18.7.7:40001" }},
		{name: "host and port", privateKey: deviceKey, override: "vpn.example.com:51820",
			want: func(c *Config) { c.Endpoint = "vpn.example.com:51820" }},
		{name: "bare IPv6 host gets brackets", privateKey: deviceKey, override: "2001:db8::1",
			want: func(c *Config) { c.Endpoint = "[2001:db8::1]:40001" }},
		{name: "bracketed IPv6 host", privateKey: deviceKey, override: "[2001:db8::1]",
			want: func(c *Config) { c.Endpoint = "[2001:db8::1]:40001" }},
		{name: "bracketed IPv6 host and port", privateKey: deviceKey, override: "[2001:db8::1]:443",
			want: func(c *Config) { c.Endpoint = "[2001:db8::1]:443" }},
		{name: "port taken from an IPv6 grant endpoint", privateKey: deviceKey, override: "vpn.example.com",
			grant: func(g *api.AccessGrant) { g.Endpoint = "[2001:db8::9]:40009" },
			want:  func(c *Config) { c.Endpoint = "vpn.example.com:40009" }},
		{name: "no IPv6 in the grant", privateKey: deviceKey,
			grant: func(g *api.AccessGrant) { g.IPv6, g.IPv6Range = netip.Addr{}, netip.Prefix{} },
			want: func(c *Config) {
				c.Addresses, c.AllowedIPs = c.Addresses[:1], c.AllowedIPs[:1]
			}},
		{name: "no MTU in the grant", privateKey: deviceKey,
			grant: func(g *api.AccessGrant) { g.MTU = 0 }, want: func(c *Config) { c.MTU = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := designGrant()
			if tt.grant != nil {
				tt.grant(&g)
			}
			want := designConfig()
			if tt.want != nil {
				tt.want(&want)
			}
			got, err := FromGrant(g, tt.privateKey, tt.override)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			require.NoError(t, CheckEndpoint(tt.override))
		})
	}
}

func TestFromGrantErrors(t *testing.T) {
	tests := []struct {
		name       string
		grant      func(g *api.AccessGrant)
		privateKey string
		override   string
		want       string
	}{
		{name: "bad private key", privateKey: "secret", want: "PrivateKey: is not a base64 WireGuard key of 32 bytes"},
		{name: "bad node key", grant: func(g *api.AccessGrant) { g.NodePublicKey = "x" }, want: "PublicKey: is not a base64"},
		{name: "no node key", grant: func(g *api.AccessGrant) { g.NodePublicKey = "" }, want: "PublicKey: missing"},
		{name: "hidden node", grant: func(g *api.AccessGrant) { g.Endpoint = "" }, want: "the grant has no endpoint (the node is hidden)"},
		{name: "hidden node, host override", grant: func(g *api.AccessGrant) { g.Endpoint = "" }, override: "vpn.example.com",
			want: "no endpoint to take the port from: give HOST:PORT"},
		{name: "no address", grant: func(g *api.AccessGrant) { g.IPv4 = netip.Addr{} }, want: "making the config of alice: invalid wg-quick config: the grant has no IPv4 address"},
		{name: "IPv6 for IPv4", grant: func(g *api.AccessGrant) { g.IPv4 = g.IPv6 }, want: "the grant has no IPv4 address"},
		{name: "IPv4 for IPv6", grant: func(g *api.AccessGrant) { g.IPv6 = g.IPv4 }, want: "the grant's IPv6 address 10.20.1.200 is not one"},
		{name: "bad override port", override: "vpn.example.com:0", want: "port 0 is out of range"},
		{name: "bad override host", override: "vpn_1.example.com", want: `endpoint "vpn_1.example.com": host "vpn_1.example.com" is neither`},
		{name: "short IPv4 override", override: "198.18.1", want: `not a valid IPv4 address`},
		{name: "name in brackets", override: "[vpn.example.com]", want: "only an IPv6 address goes in brackets"},
		{name: "IPv6 zone", override: "fe80::1%eth0", want: "zone is local to one machine"},
		{name: "small MTU with IPv6", grant: func(g *api.AccessGrant) { g.MTU = 1000 }, want: "MTU: 1000 is below 1280"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := designGrant()
			if tt.grant != nil {
				tt.grant(&g)
			}
			_, err := FromGrant(g, tt.privateKey, tt.override)
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tt.want)
			if tt.privateKey != "" {
				assert.NotContains(t, err.Error(), tt.privateKey)
			}
		})
	}
}

func TestCheckEndpointErrors(t *testing.T) {
	for _, override := range []string{"vpn.example.com:0", "vpn_1.example.com", "198.18.1", "[vpn.example.com]", "fe80::1%eth0", "host:port", ":40001", "[2001:db8::1]:", "a b"} {
		t.Run(override, func(t *testing.T) {
			err := CheckEndpoint(override)
			require.ErrorIs(t, err, ErrInvalid)
			assert.NotContains(t, err.Error(), "192.0.2.1", "the made-up grant endpoint must not show")
			assert.NotContains(t, err.Error(), `:1"`, "the made-up port must not show")
		})
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"non-canonical key", func(c *Config) { c.PrivateKey = strings.Replace(apitest.Key(0), "A=", "B=", 1) }, "PrivateKey: is not in canonical base64"},
		{"unspecified address", func(c *Config) { c.Addresses[0] = netip.MustParsePrefix("0.0.0.0/32") }, "Address: 0.0.0.0/32 is not a usable"},
		{"multicast address", func(c *Config) { c.Addresses[1] = netip.MustParsePrefix("ff02::1/128") }, "Address: ff02::1/128 is not a usable"},
		{"repeated address", func(c *Config) { c.Addresses[1] = c.Addresses[0] }, "Address: 10.20.1.200/32 is listed twice"},
		{"mapped address", func(c *Config) { c.Addresses[1] = netip.MustParsePrefix("::ffff:10.0.0.1/128") }, "IPv4-mapped"},
		{"invalid address", func(c *Config) { c.Addresses[1] = netip.Prefix{} }, "Address: invalid prefix"},
		{"DNS not canonical", func(c *Config) { c.DNS[0] = "FD00::1" }, `DNS: "FD00::1" is not written canonically (want fd00::1)`},
		{"DNS short IPv4", func(c *Config) { c.DNS[0] = "10.1" }, `DNS: "10.1" is not an IP address`},
		{"DNS bad domain", func(c *Config) { c.DNS[1] = "shop..internal" }, `DNS: "shop..internal" is not a domain name`},
		{"DNS trailing dot", func(c *Config) { c.DNS[1] = "shop.internal." }, `is not a domain name`},
		{"DNS empty", func(c *Config) { c.DNS[1] = "" }, "DNS: empty entry"},
		{"MTU too small", func(c *Config) { c.MTU = 67 }, "MTU: 67 is out of range (68..65535)"},
		{"MTU too big", func(c *Config) { c.MTU = 65536 }, "MTU: 65536 is out of range"},
		{"no peer key", func(c *Config) { c.PeerPublicKey = "" }, "PublicKey: missing"},
		{"endpoint without port", func(c *Config) { c.Endpoint = "198.18.0.1" }, "Endpoint: endpoint \"198.18.0.1\": missing port"},
		{"unmasked AllowedIPs", func(c *Config) { c.AllowedIPs[0] = netip.MustParsePrefix("10.20.0.1/16") }, "AllowedIPs: 10.20.0.1/16 has host bits set (want 10.20.0.0/16)"},
		{"keepalive too big", func(c *Config) { c.PersistentKeepalive = 65536 }, "PersistentKeepalive: 65536 is out of range"},
		{"negative keepalive", func(c *Config) { c.PersistentKeepalive = -1 }, "PersistentKeepalive: -1 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := designConfig()
			tt.change(&c)
			err := c.Validate()
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
