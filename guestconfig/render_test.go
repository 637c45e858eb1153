package guestconfig

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/znet/znet/api"
)

func sample() api.Attachment {
	return api.Attachment{
		Kind: api.KindTap, Interface: "zt0123456789", MAC: "02:11:22:33:44:55",
		IPv4: netip.MustParseAddr("10.20.1.5"), IPv6: netip.MustParseAddr("fd3c:9a1e:77b2:1::5"),
		Gateway: netip.MustParseAddr("10.20.1.1"), Gateway6: netip.MustParseAddr("fd3c:9a1e:77b2:1::1"),
		DNS:    []netip.Addr{netip.MustParseAddr("10.20.1.1"), netip.MustParseAddr("fd3c:9a1e:77b2:1::1")},
		MTU:    1420,
		Subnet: netip.MustParsePrefix("10.20.1.0/24"), Subnet6: netip.MustParsePrefix("fd3c:9a1e:77b2:1::/64"),
		Routes: []api.Route{
			{To: netip.MustParsePrefix("10.20.0.0/16"), Via: netip.MustParseAddr("10.20.1.1")},
			{To: netip.MustParsePrefix("fd3c:9a1e:77b2::/48"), Via: netip.MustParseAddr("fd3c:9a1e:77b2:1::1")},
		},
		Domain: "shop.internal",
	}
}

func TestRender(t *testing.T) {
	out, err := Render(sample(), Options{SetName: "eth1"})
	require.NoError(t, err)
	want := `network:
  version: 2
  ethernets:
    znet0:
      match:
        macaddress: "02:11:22:33:44:55"
      set-name: eth1
      dhcp4: false
      dhcp6: false
      accept-ra: false
      addresses:
        - 10.20.1.5/24
        - fd3c:9a1e:77b2:1::5/64
      mtu: 1420
      routes:
        - to: 10.20.0.0/16
          via: 10.20.1.1
        - to: fd3c:9a1e:77b2::/48
          via: fd3c:9a1e:77b2:1::1
      nameservers:
        addresses:
          - 10.20.1.1
          - fd3c:9a1e:77b2:1::1
        search:
          - shop.internal
`
	assert.Equal(t, want, string(out))
}

// TestRenderParsesBack reads the YAML back with the YAML library, as
// cloud-init would, into a generic map (not the renderer's own types).
func TestRenderParsesBack(t *testing.T) {
	tests := []struct {
		name string
		a    func() api.Attachment
		o    Options
		id   string
	}{
		{"defaults", sample, Options{}, DefaultID},
		{"own id, one-subnet network without routes", func() api.Attachment {
			a := sample()
			a.Routes = nil
			return a
		}, Options{ID: "vmnic"}, "vmnic"},
		{"vendor MAC that YAML 1.1 would read as a number", func() api.Attachment {
			a := sample()
			a.MAC = "52:54:00:12:34:56"
			return a
		}, Options{}, DefaultID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.a()
			out, err := Render(a, tt.o)
			require.NoError(t, err)
			var doc map[string]map[string]any
			require.NoError(t, yaml.Unmarshal(out, &doc))
			net := doc["network"]
			assert.Equal(t, 2, net["version"])
			eth := net["ethernets"].(map[string]any)[tt.id].(map[string]any)
			assert.Equal(t, map[string]any{"macaddress": a.MAC}, eth["match"])
			assert.Equal(t, []any{"10.20.1.5/24", "fd3c:9a1e:77b2:1::5/64"}, eth["addresses"])
			assert.Equal(t, 1420, eth["mtu"])
			assert.Equal(t, false, eth["dhcp4"])
			assert.NotContains(t, eth, "set-name")
			ns := eth["nameservers"].(map[string]any)
			assert.Equal(t, []any{"10.20.1.1", "fd3c:9a1e:77b2:1::1"}, ns["addresses"])
			assert.Equal(t, []any{"shop.internal"}, ns["search"])
			if len(a.Routes) == 0 {
				assert.NotContains(t, eth, "routes")
			} else {
				assert.Len(t, eth["routes"], len(a.Routes))
			}
		})
	}
}

func TestRenderRefusesWhatNoGuestCanUse(t *testing.T) {
	noMAC := sample()
	noMAC.MAC = ""
	_, err := Render(noMAC, Options{})
	assert.ErrorContains(t, err, "no MAC")
	noAddr := sample()
	noAddr.IPv4 = netip.Addr{}
	_, err = Render(noAddr, Options{})
	assert.ErrorContains(t, err, "no IPv4")
}
