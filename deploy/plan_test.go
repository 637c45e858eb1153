package deploy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
	"github.com/znet/znet/ipam"
	"github.com/znet/znet/spec"
)

// planDeployment is network "demo" in 10.30.0.0/16 over the given nodes:
// ids starting with "h" hidden, the others public at 198.18.0.<position+1>.
func planDeployment(ids ...string) *Deployment {
	d := &Deployment{Name: "demo", IPRange: netip.MustParsePrefix("10.30.0.0/16")}
	for i, id := range ids {
		ref := NodeRef{ID: id, API: "unix:///fake/" + id}
		if strings.HasPrefix(id, "h") {
			ref.Hidden = true
		} else {
			ref.EndpointHost = fmt.Sprintf("198.18.0.%d", i+1)
		}
		d.Nodes = append(d.Nodes, ref)
	}
	return d
}

// reservations gives node i of ids key i+1 and port 40001+i.
func reservations(ids ...string) map[string]api.Reservation {
	m := map[string]api.Reservation{}
	for i, id := range ids {
		m[id] = api.Reservation{NodeID: id, PublicKey: apitest.Key(byte(i + 1)), ListenPort: 40001 + i}
	}
	return m
}

// specText renders a spec's members one a line: "id subnet endpoint".
func specText(s *spec.Spec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s generation %d %s %s mtu %d\n", s.Name, s.Generation, s.IPRange, s.IPv6Range, s.MTU)
	for _, n := range s.Nodes {
		fmt.Fprintf(&b, "%s %s %s\n", n.ID, n.Subnet, dashed(n.Endpoint))
	}
	return b.String()
}

func dashed(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func TestBuildSpec(t *testing.T) {
	ula := spec.DeriveULA("demo")
	newest := &spec.Spec{Name: "demo", Generation: 4, IPRange: netip.MustParsePrefix("10.30.0.0/16"), IPv6Range: ula, MTU: 1420,
		Nodes: []spec.Node{
			{ID: "b", Subnet: netip.MustParsePrefix("10.30.0.0/24"), PublicKey: apitest.Key(9), Endpoint: "198.18.0.9:1"},
			{ID: "c", Subnet: netip.MustParsePrefix("10.30.1.0/24"), PublicKey: apitest.Key(8), Endpoint: "198.18.0.8:1"},
			{ID: "gone", Subnet: netip.MustParsePrefix("10.30.2.0/24"), PublicKey: apitest.Key(7), Endpoint: "198.18.0.7:1"},
		},
	}
	tests := []struct {
		name   string
		d      *Deployment
		newest *spec.Spec
		ready  map[string]api.Reservation
		want   string
	}{
		{
			name: "new network: lowest subnets in file order, members sorted by id",
			d:    planDeployment("c", "b", "ha"), ready: reservations("c", "b", "ha"),
			want: "demo generation 1 10.30.0.0/16 " + ula.String() + " mtu 0\n" +
				"b 10.30.1.0/24 198.18.0.2:40002\n" +
				"c 10.30.0.0/24 198.18.0.1:40001\n" +
				"ha 10.30.2.0/24 -\n",
		},
		{
			name: "members keep their subnets, a left-out member's stays taken",
			d:    planDeployment("c", "b", "new"), newest: newest, ready: reservations("c", "b", "new"),
			want: "demo generation 1 10.30.0.0/16 " + ula.String() + " mtu 0\n" +
				"b 10.30.0.0/24 198.18.0.2:40002\n" +
				"c 10.30.1.0/24 198.18.0.1:40001\n" +
				"new 10.30.3.0/24 198.18.0.3:40003\n",
		},
		{
			name: "a member that did not answer keeps its old entry",
			d:    planDeployment("b", "c"), newest: newest, ready: reservations("b"),
			want: "demo generation 1 10.30.0.0/16 " + ula.String() + " mtu 0\n" +
				"b 10.30.0.0/24 198.18.0.1:40001\n" +
				"c 10.30.1.0/24 198.18.0.8:1\n",
		},
		{
			name: "a new node that did not answer is left out",
			d:    planDeployment("b", "new"), newest: newest, ready: reservations("b"),
			want: "demo generation 1 10.30.0.0/16 " + ula.String() + " mtu 0\n" +
				"b 10.30.0.0/24 198.18.0.1:40001\n",
		},
		{
			name: "subnet_bits sizes new members only",
			d: func() *Deployment {
				d := planDeployment("b", "x", "y")
				d.SubnetBits = 26
				return d
			}(), newest: newest, ready: reservations("b", "x", "y"),
			want: "demo generation 1 10.30.0.0/16 " + ula.String() + " mtu 0\n" +
				"b 10.30.0.0/24 198.18.0.1:40001\n" +
				"x 10.30.3.0/26 198.18.0.2:40002\n" +
				"y 10.30.3.64/26 198.18.0.3:40003\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := buildSpec(tt.d, 1, tt.newest, tt.ready)
			require.NoError(t, err)
			assert.Equal(t, tt.want, specText(s))
			assert.NoError(t, s.Validate(""))
		})
	}
}

func TestBuildSpecErrors(t *testing.T) {
	newest := &spec.Spec{Name: "demo", Generation: 1, IPRange: netip.MustParsePrefix("10.99.0.0/16")}
	_, err := buildSpec(planDeployment("a"), 2, newest, reservations("a"))
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "ip_range: the network demo has range 10.99.0.0/16; a range cannot be changed")

	full := planDeployment("a", "b", "c")
	full.IPRange = netip.MustParsePrefix("10.30.0.0/25")
	full.SubnetBits = 26
	_, err = buildSpec(full, 1, nil, reservations("a", "b", "c"))
	require.ErrorIs(t, err, ipam.ErrFull)
	assert.Contains(t, err.Error(), "planning a subnet for node c")

	dupKeys := reservations("a", "b")
	dupKeys["b"] = api.Reservation{NodeID: "b", PublicKey: dupKeys["a"].PublicKey, ListenPort: 1}
	_, err = buildSpec(planDeployment("a", "b"), 1, nil, dupKeys)
	require.ErrorIs(t, err, spec.ErrInvalid)
}

func TestNewestSpec(t *testing.T) {
	g := func(n uint64) *spec.Spec { return &spec.Spec{Generation: n} }
	assert.Nil(t, newestSpec(nil))
	assert.Nil(t, newestSpec([]*spec.Spec{nil, nil}))
	specs := []*spec.Spec{g(2), nil, g(5), g(3), g(5)}
	assert.Same(t, specs[2], newestSpec(specs))
}
