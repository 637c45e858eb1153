package spec_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/spec"
)

// TestDecodeExtension covers the members' verbatim allowed IPs and link
// addresses (the zos extension): what is accepted and every refusal.
func TestDecodeExtension(t *testing.T) {
	tests := []struct {
		name   string
		change func(doc map[string]any)
		field  string // "" when the document is good
		reason string
	}{
		{name: "verbatim allowed IPs and link addresses", change: func(d map[string]any) {
			node(d, 1)["allowed_ips"] = []any{"10.20.2.0/24", "100.64.20.2/32", "fd3c:9a1e:77b2:2::/64"}
			node(d, 1)["link_address"] = "100.64.20.2"
			node(d, 0)["link_address"] = "100.64.20.1"
		}},
		{name: "a verbatim member may omit its subnet", change: func(d map[string]any) {
			delete(node(d, 1), "subnet")
			node(d, 1)["allowed_ips"] = []any{"10.20.0.0/16", "100.64.0.0/16"}
		}},
		{name: "the applying node may not omit its subnet", change: func(d map[string]any) {
			delete(node(d, 0), "subnet")
			node(d, 0)["allowed_ips"] = []any{"10.20.0.0/16"}
		}, field: "nodes[0].subnet", reason: "required"},
		{name: "allowed IP outside every range", change: func(d map[string]any) {
			node(d, 1)["allowed_ips"] = []any{"10.20.2.0/24", "192.168.1.0/24"}
		}, field: "nodes[1].allowed_ips[1]", reason: "outside"},
		{name: "allowed IP wider than the range", change: func(d map[string]any) {
			node(d, 1)["allowed_ips"] = []any{"10.0.0.0/8"}
		}, field: "nodes[1].allowed_ips[0]", reason: "outside"},
		{name: "allowed IP with host bits", change: func(d map[string]any) {
			node(d, 1)["allowed_ips"] = []any{"10.20.2.7/24"}
		}, field: "nodes[1].allowed_ips[0]", reason: "host bits"},
		{name: "allowed IP not a prefix", change: func(d map[string]any) {
			node(d, 1)["allowed_ips"] = []any{"10.20.2.0"}
		}, field: "nodes[1].allowed_ips[0]", reason: "not a CIDR prefix"},
		{name: "allowed IP not a string", change: func(d map[string]any) {
			node(d, 1)["allowed_ips"] = []any{7}
		}, field: "nodes[1].allowed_ips[0]", reason: "must be a string"},
		{name: "allowed IP inside the applying node's subnet", change: func(d map[string]any) {
			node(d, 1)["allowed_ips"] = []any{"10.20.2.0/24", "10.20.1.128/25"}
		}, field: "nodes[1].allowed_ips[1]", reason: "inside this node's subnet 10.20.1.0/24"},
		{name: "allowed IP inside the applying node's /64", change: func(d map[string]any) {
			node(d, 1)["allowed_ips"] = []any{"fd3c:9a1e:77b2:1::/80"}
		}, field: "nodes[1].allowed_ips[0]", reason: "inside this node's subnet fd3c:9a1e:77b2:1::/64"},
		{name: "link address outside 100.64/16", change: func(d map[string]any) {
			node(d, 1)["link_address"] = "100.65.0.1"
		}, field: "nodes[1].link_address", reason: "not inside 100.64.0.0/16"},
		{name: "link address malformed", change: func(d map[string]any) {
			node(d, 1)["link_address"] = "100.64.20"
		}, field: "nodes[1].link_address", reason: "not an IP address"},
		{name: "link address twice", change: func(d map[string]any) {
			node(d, 0)["link_address"] = "100.64.20.2"
			node(d, 2)["link_address"] = "100.64.20.2"
		}, field: "nodes[2].link_address", reason: "duplicate of nodes[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := goodDoc()
			tt.change(doc)
			s, err := spec.Decode(marshal(t, doc), "node1")
			if tt.field == "" {
				require.NoError(t, err)
				again, err := spec.Decode(marshal(t, s), "node1")
				require.NoError(t, err, "round trip")
				assert.True(t, s.Equal(again), "round trip")
				return
			}
			var fe *spec.FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.field, fe.Field)
			assert.Contains(t, fe.Reason, tt.reason)
		})
	}
}

func TestHasLinkAddresses(t *testing.T) {
	s := &spec.Spec{Nodes: []spec.Node{{ID: "a"}, {ID: "b"}}}
	assert.False(t, s.HasLinkAddresses())
	s.Nodes[1].LinkAddress = netip.MustParseAddr("100.64.1.2")
	assert.True(t, s.HasLinkAddresses())
	c := s.Clone()
	c.Nodes[0].AllowedIPs = append(c.Nodes[0].AllowedIPs, spec.LinkRange)
	assert.Empty(t, s.Nodes[0].AllowedIPs, "Clone copies allowed IPs")
}
