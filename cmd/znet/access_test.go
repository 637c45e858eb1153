package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/access"
	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
)

// sampleGrant is the daemon's answer for DESIGN.md's example.
func sampleGrant() api.AccessGrant {
	return api.AccessGrant{
		AccessPeer: api.AccessPeer{
			Name: "alice", PublicKey: apitest.Key(9),
			IPv4: netip.MustParseAddr("10.20.1.200"), IPv6: netip.MustParseAddr("fd3c:9a1e:77b2:1::c8"),
		},
		Network:       "shop",
		NodePublicKey: apitest.Key(1),
		Endpoint:      "198.18.0.1:40001",
		IPRange:       netip.MustParsePrefix("10.20.0.0/16"),
		IPv6Range:     netip.MustParsePrefix("fd3c:9a1e:77b2::/48"),
		DNS:           netip.MustParseAddr("10.20.1.1"),
		MTU:           1420,
	}
}

// wantConfig is the config sampleGrant gives, without a private key.
func wantConfig() access.Config {
	return access.Config{
		Addresses:           []netip.Prefix{netip.MustParsePrefix("10.20.1.200/32"), netip.MustParsePrefix("fd3c:9a1e:77b2:1::c8/128")},
		DNS:                 []string{"10.20.1.1", "shop.internal"},
		MTU:                 1420,
		PeerPublicKey:       apitest.Key(1),
		Endpoint:            "198.18.0.1:40001",
		AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd3c:9a1e:77b2::/48")},
		PersistentKeepalive: 25,
	}
}

var addAccessCall = regexp.MustCompile(`^AddAccess\(shop, alice, (\S+)\)$`)

// sentKey returns the public key of the one AddAccess call.
func sentKey(t *testing.T, fake *apitest.Fake) string {
	t.Helper()
	calls := fake.Calls()
	require.Len(t, calls, 1)
	m := addAccessCall.FindStringSubmatch(calls[0])
	require.NotNil(t, m, calls[0])
	return m[1]
}

func TestAccessAddMakesTheKeyPair(t *testing.T) {
	var sent []string
	for range 2 {
		fake, socket := newFake(t)
		fake.Grant = sampleGrant()
		r := cli(t, "", "access", "add", "shop", "alice", "--socket", socket)
		require.Equal(t, 0, r.code, r.stderr)
		pub := sentKey(t, fake)

		cfg, err := access.Parse(r.stdout)
		require.NoError(t, err, r.stdout)
		priv, err := wgtypes.ParseKey(cfg.PrivateKey)
		require.NoError(t, err)
		assert.Equal(t, pub, priv.PublicKey().String(), "the config's private key belongs to the public key sent")
		want := wantConfig()
		want.PrivateKey = cfg.PrivateKey
		assert.Equal(t, want, cfg)
		assert.Equal(t, "znet: access peer alice added to shop as 10.20.1.200, fd3c:9a1e:77b2:1::c8; the private key in this config is stored nowhere else\n", r.stderr)
		assert.NotContains(t, r.stderr, cfg.PrivateKey)
		sent = append(sent, pub)
	}
	assert.NotEqual(t, sent[0], sent[1], "every add makes a new key pair")
}

func TestAccessAddWithPublicKey(t *testing.T) {
	fake, socket := newFake(t)
	fake.Grant = sampleGrant()
	key := apitest.Key(9)
	r := cli(t, "", "access", "add", "--public-key", key, "shop", "alice", "--socket", socket)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, key, sentKey(t, fake))
	assert.NotContains(t, r.stdout, "PrivateKey")
	cfg, err := access.Parse(r.stdout)
	require.NoError(t, err, r.stdout)
	assert.Equal(t, wantConfig(), cfg)
	assert.Equal(t, wantConfig().Render(), r.stdout, "stdout is the config and nothing else")
	assert.Empty(t, r.stderr)
}

func TestAccessAddEndpoint(t *testing.T) {
	tests := []struct {
		flag, want string
	}{
		{"vpn.example.com", "vpn.example.com:40001"},
		{"vpn.example.com:443", "vpn.example.com:443"},
		{"198.18.9.9", "198.18.9.9:40001"},
		{"2001:db8::1", "[2001:db8::1]:40001"},
		{"[2001:db8::1]:443", "[2001:db8::1]:443"},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			fake, socket := newFake(t)
			fake.Grant = sampleGrant()
			r := cli(t, "", "access", "add", "shop", "alice", "--public-key", apitest.Key(9), "--endpoint", tt.flag, "--socket", socket)
			require.Equal(t, 0, r.code, r.stderr)
			cfg, err := access.Parse(r.stdout)
			require.NoError(t, err, r.stdout)
			assert.Equal(t, tt.want, cfg.Endpoint)
		})
	}
}

func TestAccessAddQR(t *testing.T) {
	fake, socket := newFake(t)
	fake.Grant = sampleGrant()
	r := cli(t, "", "access", "add", "shop", "alice", "--public-key", apitest.Key(9), "--qr", "--socket", socket)
	require.Equal(t, 0, r.code, r.stderr)
	text := wantConfig().Render()
	var code bytes.Buffer
	require.NoError(t, access.QR(&code, text))
	assert.Equal(t, text+"\n"+code.String(), r.stdout, "the config, a blank line, the QR code of the config")
}

func TestAccessAddJSON(t *testing.T) {
	fake, socket := newFake(t)
	fake.Grant = sampleGrant()
	r := cli(t, "", "access", "add", "shop", "alice", "--json", "--socket", socket)
	require.Equal(t, 0, r.code, r.stderr)
	var keys map[string]json.RawMessage
	require.NoError(t, jsonDecode(r.stdout, &keys), r.stdout)
	assert.Len(t, keys, 2)
	var got struct {
		Grant  api.AccessGrant `json:"grant"`
		Config string          `json:"config"`
	}
	require.NoError(t, jsonDecode(r.stdout, &got))
	assert.Equal(t, sampleGrant(), got.Grant)
	cfg, err := access.Parse(got.Config)
	require.NoError(t, err, got.Config)
	priv, err := wgtypes.ParseKey(cfg.PrivateKey)
	require.NoError(t, err)
	assert.Equal(t, sentKey(t, fake), priv.PublicKey().String())
	assert.Empty(t, r.stderr)
}

func TestAccessRemoveAndList(t *testing.T) {
	peers := []api.AccessPeer{
		{Name: "alice", PublicKey: apitest.Key(9), IPv4: netip.MustParseAddr("10.20.1.200"), IPv6: netip.MustParseAddr("fd3c:9a1e:77b2:1::c8")},
		{Name: "bob", PublicKey: apitest.Key(10), IPv4: netip.MustParseAddr("10.20.1.201"), IPv6: netip.MustParseAddr("fd3c:9a1e:77b2:1::c9")},
	}
	tests := []struct {
		args       []string
		access     []api.AccessPeer
		wantCalls  []string
		wantStdout string
	}{
		{[]string{"access", "remove", "shop", "alice"}, nil, []string{"RemoveAccess(shop, alice)"}, "access peer alice removed from shop\n"},
		{[]string{"access", "remove", "shop", "alice", "--json"}, nil, []string{"RemoveAccess(shop, alice)"}, ""},
		{[]string{"access", "list", "shop"}, peers, []string{"AccessPeers(shop)"}, "" +
			"NAME   IPV4         IPV6                  PUBLIC KEY\n" +
			"alice  10.20.1.200  fd3c:9a1e:77b2:1::c8  " + apitest.Key(9) + "\n" +
			"bob    10.20.1.201  fd3c:9a1e:77b2:1::c9  " + apitest.Key(10) + "\n"},
		{[]string{"access", "list", "shop"}, nil, []string{"AccessPeers(shop)"}, "NAME  IPV4  IPV6  PUBLIC KEY\n"},
		{[]string{"access", "list", "shop", "--json"}, nil, []string{"AccessPeers(shop)"}, "[]\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fake, socket := newFake(t)
			fake.Access = tt.access
			r := cli(t, "", append(tt.args, "--socket", socket)...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, tt.wantCalls, fake.Calls())
			assert.Equal(t, tt.wantStdout, r.stdout)
		})
	}

	t.Run("list --json", func(t *testing.T) {
		fake, socket := newFake(t)
		fake.Access = peers
		r := cli(t, "", "access", "list", "shop", "--json", "--socket", socket)
		require.Equal(t, 0, r.code, r.stderr)
		var objs []map[string]any
		require.NoError(t, jsonDecode(r.stdout, &objs))
		for _, obj := range objs {
			for _, k := range []string{"name", "public_key", "ipv4", "ipv6"} {
				assert.Contains(t, obj, k)
			}
		}
		var got []api.AccessPeer
		require.NoError(t, jsonDecode(r.stdout, &got))
		assert.Equal(t, peers, got)
	})
}

// TestAccessErrors checks exit codes and messages: 2 for a bad command line
// (and no call), 1 and the daemon's field for a refusal.
func TestAccessErrors(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(f *apitest.Fake)
		args       []string
		wantCode   int
		wantStderr []string
		wantCalls  []string
	}{
		{name: "missing name", args: []string{"access", "add", "shop"}, wantCode: 2,
			wantStderr: []string{"missing arguments", "usage: znet access add NETWORK NAME [--public-key KEY] [--endpoint HOST[:PORT]] [--qr]"}},
		{name: "bad endpoint", args: []string{"access", "add", "shop", "alice", "--endpoint", "vpn_1.example.com"}, wantCode: 2,
			wantStderr: []string{`znet: --endpoint: endpoint "vpn_1.example.com": host "vpn_1.example.com" is neither`, "--endpoint HOST[:PORT]"}},
		{name: "bad endpoint port", args: []string{"access", "add", "shop", "alice", "--endpoint", "vpn.example.com:0"}, wantCode: 2,
			wantStderr: []string{"znet: --endpoint: endpoint \"vpn.example.com:0\": port 0 is out of range"}},
		{name: "qr and json", args: []string{"access", "add", "shop", "alice", "--qr", "--json"}, wantCode: 2,
			wantStderr: []string{"znet: --qr and --json do not go together"}},
		{
			name: "bad key rejected by the daemon",
			setup: func(f *apitest.Fake) {
				f.SetErr("AddAccess", api.Invalid("public_key", "is not a base64 WireGuard key of 32 bytes"))
			},
			args: []string{"access", "add", "shop", "alice", "--public-key", "not-a-key"}, wantCode: 1,
			wantStderr: []string{"znet: public_key: is not a base64 WireGuard key of 32 bytes\n"},
			wantCalls:  []string{"AddAccess(shop, alice, not-a-key)"},
		},
		{
			name: "name taken",
			setup: func(f *apitest.Fake) {
				f.SetErr("AddAccess", api.Conflict("name", "access peer alice exists already (10.20.1.200)"))
			},
			args: []string{"access", "add", "shop", "alice", "--public-key", apitest.Key(9)}, wantCode: 1,
			wantStderr: []string{"znet: name: access peer alice exists already (10.20.1.200)\n"},
			wantCalls:  []string{"AddAccess(shop, alice, " + apitest.Key(9) + ")"},
		},
		{
			name: "hidden node",
			setup: func(f *apitest.Fake) {
				f.SetErr("AddAccess", api.Conflict("network", "node node1 is hidden in shop (no endpoint): add access on a member with a public endpoint"))
			},
			args: []string{"access", "add", "shop", "alice", "--public-key", apitest.Key(9)}, wantCode: 1,
			wantStderr: []string{"znet: network: node node1 is hidden in shop"},
			wantCalls:  []string{"AddAccess(shop, alice, " + apitest.Key(9) + ")"},
		},
		{
			name: "unusable grant is taken back",
			setup: func(f *apitest.Fake) {
				f.Grant = sampleGrant()
				f.Grant.NodePublicKey = ""
			},
			args: []string{"access", "add", "shop", "alice", "--public-key", apitest.Key(9)}, wantCode: 1,
			wantStderr: []string{"znet: making the config of alice: invalid wg-quick config: PublicKey: missing (access peer alice removed again)\n"},
			wantCalls:  []string{"AddAccess(shop, alice, " + apitest.Key(9) + ")", "RemoveAccess(shop, alice)"},
		},
		{
			name: "unusable grant that cannot be taken back",
			setup: func(f *apitest.Fake) {
				f.Grant = sampleGrant()
				f.Grant.Endpoint = ""
				f.SetErr("RemoveAccess", api.NotFound("peer", "no access peer alice in shop"))
			},
			args: []string{"access", "add", "shop", "alice", "--public-key", apitest.Key(9)}, wantCode: 1,
			wantStderr: []string{"znet: making the config of alice: the grant has no endpoint (the node is hidden) (and removing access peer alice again failed: peer: no access peer alice in shop)\n"},
			wantCalls:  []string{"AddAccess(shop, alice, " + apitest.Key(9) + ")", "RemoveAccess(shop, alice)"},
		},
		{
			name:  "remove unknown",
			setup: func(f *apitest.Fake) { f.SetErr("RemoveAccess", api.NotFound("peer", "no access peer carol in shop")) },
			args:  []string{"access", "remove", "shop", "carol"}, wantCode: 1,
			wantStderr: []string{"znet: peer: no access peer carol in shop\n"},
			wantCalls:  []string{"RemoveAccess(shop, carol)"},
		},
		{
			name:  "list of an unknown network",
			setup: func(f *apitest.Fake) { f.SetErr("AccessPeers", api.NotFound("name", "no network zoo on node node1")) },
			args:  []string{"access", "list", "zoo"}, wantCode: 1,
			wantStderr: []string{"znet: name: no network zoo on node node1\n"},
			wantCalls:  []string{"AccessPeers(zoo)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, socket := newFake(t)
			if tt.setup != nil {
				tt.setup(fake)
			}
			r := cli(t, "", append(tt.args, "--socket", socket)...)
			assert.Equal(t, tt.wantCode, r.code)
			for _, want := range tt.wantStderr {
				assert.Contains(t, r.stderr, want)
			}
			assert.Empty(t, r.stdout)
			assert.Equal(t, tt.wantCalls, fake.Calls())
		})
	}
}

func TestAccessHelp(t *testing.T) {
	r := cli(t, "", "help", "access")
	require.Equal(t, 0, r.code, r.stderr)
	for _, want := range []string{
		"znet access add NETWORK NAME [--public-key KEY] [--endpoint HOST[:PORT]] [--qr]",
		"znet access remove NETWORK NAME",
		"znet access list NETWORK",
	} {
		assert.Contains(t, r.stdout, want)
	}
	r = cli(t, "", "access", "add", "--help")
	require.Equal(t, 0, r.code, r.stderr)
	for _, want := range []string{"--public-key KEY", "--endpoint HOST[:PORT]", "--qr"} {
		assert.Contains(t, r.stdout, want)
	}
}
