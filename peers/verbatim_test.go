package peers

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDesiredVerbatim covers members that carry their own AllowedIPs (a
// zos-planned network): they are peers whether hidden or not, with exactly
// their AllowedIPs and the IPv6 twins, and take no part in relaying.
func TestDesiredVerbatim(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	t.Run("a hidden node's single peer carries the whole range", func(t *testing.T) {
		s := testSpec(true, true, false)
		s.Nodes = s.Nodes[:1:1]
		s.Nodes = append(s.Nodes, testSpec(true, true, false).Nodes[2])
		s.Nodes[0].Subnet = netip.Prefix{} // the client's bug: no usable subnet
		s.Nodes[0].AllowedIPs = pfx("10.20.0.0/16", "100.64.0.0/16")
		got, err := Desired(context.Background(), s, "node3", noResolver(t))
		require.NoError(t, err)
		assert.Equal(t, "node1 AQEBAQ 198.18.0.1:40001 10.20.0.0/16,100.64.0.0/16,fd3c:9a1e:77b2::/48 25s\n", renderPeers(got))
	})
	t.Run("the access node peers with the endpoint-less user and hidden node", func(t *testing.T) {
		s := testSpec(true, false, false)
		s.Nodes[0].Endpoint = "" // zos does not tell a node its own endpoint
		s.Nodes[1].AllowedIPs = pfx("10.20.2.0/24", "100.64.20.2/32")
		s.Nodes[2].AllowedIPs = pfx("10.20.3.0/24", "100.64.20.3/32")
		got, err := Desired(context.Background(), s, "node1", noResolver(t))
		require.NoError(t, err)
		assert.Equal(t,
			"node2 AgICAg - 10.20.2.0/24,100.64.20.2/32,fd3c:9a1e:77b2:2::/64 0s\n"+
				"node3 AwMDAw - 10.20.3.0/24,100.64.20.3/32,fd3c:9a1e:77b2:3::/64 0s\n",
			renderPeers(got))
	})
	t.Run("a public node's peer for the access node carries what it relays", func(t *testing.T) {
		s := testSpec(true, true)
		s.Nodes[0].AllowedIPs = pfx("10.20.1.0/24", "100.64.20.1/32", "10.20.9.0/24", "100.64.20.9/32")
		got, err := Desired(context.Background(), s, "node2", noResolver(t))
		require.NoError(t, err)
		assert.Equal(t,
			"node1 AQEBAQ 198.18.0.1:40001 10.20.1.0/24,10.20.9.0/24,100.64.20.1/32,100.64.20.9/32,fd3c:9a1e:77b2:1::/64,fd3c:9a1e:77b2:9::/64 25s\n",
			renderPeers(got))
		assert.Equal(t, pfx("10.20.1.0/24", "10.20.9.0/24", "100.64.20.1/32", "100.64.20.9/32",
			"fd3c:9a1e:77b2:1::/64", "fd3c:9a1e:77b2:9::/64"), Routes(got))
	})
}
