package daemon

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/dnsresolver"
	"github.com/znet/znet/spec"
)

// TestDNSConfigMemberSubnets checks that the resolver learns each other
// member's subnets, the only addresses it keeps records of from them.
func TestDNSConfigMemberSubnets(t *testing.T) {
	s := &spec.Spec{
		Name: "shop", Generation: 1, IPRange: mustPrefix("10.20.0.0/16"),
		IPv6Range: mustPrefix("fd3c:9a1e:77b2::/48"), MTU: spec.DefaultMTU,
		Nodes: []spec.Node{
			{ID: "n1", Subnet: mustPrefix("10.20.4.0/24")},
			{ID: "n2", Subnet: mustPrefix("10.20.1.0/26")},
		},
	}
	d := &Daemon{nodeID: "n1"}
	cfg, err := d.dnsConfig(s, nil)
	require.NoError(t, err)
	assert.Equal(t, []dnsresolver.Member{{
		ID:       "n2",
		Gateway4: netip.MustParseAddr("10.20.1.1"),
		Gateway6: netip.MustParseAddr("fd3c:9a1e:77b2:1::1"),
		Subnet4:  mustPrefix("10.20.1.0/26"),
		Subnet6:  mustPrefix("fd3c:9a1e:77b2:1::/64"),
	}}, cfg.Members)
	assert.Equal(t, netip.MustParseAddr("fd3c:9a1e:77b2:4::1"), cfg.Gateway6)
}
