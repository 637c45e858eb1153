package access

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseDesignExample(t *testing.T) {
	c, err := Parse(designConfig().Render())
	require.NoError(t, err)
	assert.Equal(t, designConfig(), c)
}

// TestParseAccepts feeds spellings that wg-quick and wg accept and checks
// what they mean.
func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		text string
		want func(c *Config) // applied to designConfig()
	}{
		{
			name: "comments, blank lines, spaces and case",
			text: "# alice's laptop\n\n  [interface]  # mine\nprivatekey=" + deviceKey + "\n\tADDRESS =10.20.1.200/32 ,fd3c:9a1e:77b2:1::c8/128\n" +
				"Dns = 10.20.1.1,shop.internal   \nmtu = 1420\n[PEER]\nPublicKey  =  " + nodeKey + "\nendpoint = 198.18.0.1:40001 # node1\n" +
				"allowedIPs = 10.20.0.0/16, fd3c:9a1e:77b2::/48\npersistentkeepalive = 25",
		},
		{
			name: "CRLF line ends",
			text: strings.ReplaceAll(designConfig().Render(), "\n", "\r\n"),
		},
		{
			name: "lists over several lines, separated by spaces in Address and DNS",
			text: "[Interface]\nPrivateKey = " + deviceKey + "\nAddress = 10.20.1.200/32\nAddress = fd3c:9a1e:77b2:1::c8/128\n" +
				"DNS = 10.20.1.1 shop.internal\nMTU = 1420\n[Peer]\nPublicKey = " + nodeKey + "\nEndpoint = 198.18.0.1:40001\n" +
				"AllowedIPs = 10.20.0.0/16\nAllowedIPs = fd3c:9a1e:77b2::/48\nPersistentKeepalive = 25\n",
		},
		{
			name: "bare addresses, AllowedIPs with host bits, keepalive off",
			text: "[Interface]\nAddress = 10.20.1.200, fd3c:9a1e:77b2:1::c8\n[Peer]\nPublicKey = " + nodeKey +
				"\nAllowedIPs = 10.20.9.9/16, fd3c:9a1e:77b2::1/48\nPersistentKeepalive = Off\n",
			want: func(c *Config) {
				c.PrivateKey, c.DNS, c.MTU, c.Endpoint, c.PersistentKeepalive = "", nil, 0, "", 0
			},
		},
		{
			name: "IPv6 and host name endpoints",
			text: "[Interface]\n[Peer]\nPublicKey = " + nodeKey + "\nEndpoint = [2001:db8::1]:51820\n",
			want: func(c *Config) { *c = Config{PeerPublicKey: nodeKey, Endpoint: "[2001:db8::1]:51820"} },
		},
		{
			name: "no newline at the end, MTU after the addresses' check",
			text: "[Peer]\nPublicKey = " + nodeKey + "\n[Interface]\nMTU = 1280\nAddress = fd00::1/64",
			want: func(c *Config) {
				*c = Config{PeerPublicKey: nodeKey, MTU: 1280, Addresses: []netip.Prefix{netip.MustParsePrefix("fd00::1/64")}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := designConfig()
			if tt.want != nil {
				tt.want(&want)
			}
			got, err := Parse(tt.text)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			again, err := Parse(got.Render())
			require.NoError(t, err)
			assert.Equal(t, got, again)
		})
	}
}

// TestParseErrors checks that every refusal names its line.
func TestParseErrors(t *testing.T) {
	head := "[Interface]\nPrivateKey = " + deviceKey + "\n" // lines 1-2
	peer := "[Peer]\nPublicKey = " + nodeKey + "\n"         // two lines
	tests := []struct {
		name string
		text string
		want string
	}{
		{"empty text", "", "no [Interface] section"},
		{"no peer", head, "no [Peer] section"},
		{"no interface", peer, "no [Interface] section"},
		{"peer without key", head + "[Peer]\nEndpoint = 198.18.0.1:1\n", "line 3: [Peer] has no PublicKey"},
		{"unknown section", head + "[Peers]\n", "line 3: unknown section [Peers]"},
		{"spaced section", "[ Interface ]\n" + peer, "line 1: unknown section [ Interface ]"},
		{"second interface", head + peer + "[Interface]\n", "line 5: a second [Interface] (the first is on line 1)"},
		{"second peer", head + peer + "\n[Peer]\nPublicKey = " + nodeKey + "\n", "line 6: a second [Peer] (the first is on line 3)"},
		{"key before any section", "MTU = 1420\n" + head + peer, "line 1: MTU stands before any section (it belongs in [Interface])"},
		{"key in the wrong section", head + peer + "DNS = 10.0.0.1\n", "line 5: DNS belongs in [Interface], not [Peer]"},
		{"peer key in interface", head + "Endpoint = 198.18.0.1:1\n" + peer, "line 3: Endpoint belongs in [Peer], not [Interface]"},
		{"unknown key", head + "Adress = 10.0.0.1/32\n" + peer, `line 3: unknown key "Adress"`},
		{"key with a space", head + "Private Key = x\n" + peer, `line 3: unknown key "Private Key"`},
		{"wg-quick key a config cannot hold", head + "PostUp = iptables -F\n" + peer, "line 3: PostUp (in [Interface]) is not supported"},
		{"preshared key", head + peer + "PresharedKey = " + nodeKey + "\n", "line 5: PresharedKey (in [Peer]) is not supported"},
		{"no equals sign", head + "MTU 1420\n" + peer, "line 3: want KEY = VALUE or a [Section]"},
		{"no key", head + "= 1420\n" + peer, "line 3: missing key before '='"},
		{"empty value", head + "MTU =   # later\n" + peer, "line 3: MTU has no value"},
		{"repeated key", head + "PrivateKey = " + deviceKey + "\n" + peer, "line 3: PrivateKey is set on line 2 already"},
		{"repeated peer key", head + peer + "PublicKey = " + nodeKey + "\n", "line 5: PublicKey is set on line 4 already"},
		{"bad private key", "[Interface]\nPrivateKey = c2VjcmV0\n" + peer, "line 2: PrivateKey: is not a base64 WireGuard key of 32 bytes"},
		{"bad public key", head + "[Peer]\nPublicKey = " + nodeKey[:40] + "\n", "line 4: PublicKey: is not a base64"},
		{"bad address", head + "Address = 10.20.1.300/32\n" + peer, `line 3: Address: "10.20.1.300/32" is not an IP prefix`},
		{"zone in address", head + "Address = fe80::1%eth0\n" + peer, `line 3: Address: "fe80::1%eth0" is not an IP address or prefix`},
		{"address twice over two lines", head + "Address = 10.0.0.1/32\nAddress = 10.0.0.1/32\n" + peer, "line 4: Address: 10.0.0.1/32 is listed twice"},
		{"empty list item", head + "Address = 10.0.0.1/32,,10.0.0.2/32\n" + peer, "line 3: Address: empty item in the list"},
		{"trailing comma", head + peer + "AllowedIPs = 10.0.0.0/8,\n", "line 5: AllowedIPs: empty item in the list"},
		{"AllowedIPs separated by spaces", head + peer + "AllowedIPs = 10.0.0.0/8 fd00::/8\n", `line 5: AllowedIPs: "10.0.0.0/8 fd00::/8": separate the items with commas`},
		{"bad AllowedIPs", head + peer + "AllowedIPs = 10.0.0.0/33\n", `line 5: AllowedIPs: "10.0.0.0/33" is not an IP prefix`},
		{"DNS that wg-quick takes for an address", head + "DNS = 10.0.1\n" + peer, `line 3: DNS: "10.0.1" is not an IP address`},
		{"DNS search domain with underscore", head + "DNS = my_shop.internal\n" + peer, `line 3: DNS: "my_shop.internal" is not a domain name (bad character '_')`},
		{"MTU not a number", head + "MTU = 1420b\n" + peer, `line 3: MTU: "1420b" is not a number`},
		{"MTU with a leading zero", head + "MTU = 01420\n" + peer, `line 3: MTU: "01420" is not a number`},
		{"non-ASCII space, which wg-quick keeps", head + "MTU = 1420\u00a0\n" + peer, `line 3: MTU: "1420\u00a0" is not a number`},
		{"MTU out of range", head + "MTU = 99999\n" + peer, "line 3: MTU: 99999 is out of range"},
		{"MTU too small for IPv6", head + "MTU = 1200\nAddress = fd00::1/128\n" + peer, "line 3: MTU: 1200 is below 1280"},
		{"endpoint without port", head + peer + "Endpoint = 198.18.0.1\n", `line 5: Endpoint: endpoint "198.18.0.1": missing port`},
		{"endpoint IPv6 without brackets", head + peer + "Endpoint = 2001:db8::1:51820\n", "line 5: Endpoint: endpoint \"2001:db8::1:51820\": an IPv6 address needs brackets"},
		{"keepalive negative", head + peer + "PersistentKeepalive = -1\n", `line 5: PersistentKeepalive: "-1" is not a number`},
		{"keepalive too big", head + peer + "PersistentKeepalive = 65536\n", "line 5: PersistentKeepalive: 65536 is out of range (0..65535)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.text)
			require.ErrorIs(t, err, ErrInvalid)
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.want, err.Error()[:min(len(err.Error()), len(tt.want))], err.Error())
			assert.NotContains(t, err.Error(), deviceKey, "errors never quote a private key")
		})
	}
}
