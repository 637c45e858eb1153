package peers

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/znet/znet/spec"
)

// mapResolver resolves the host names in m and fails for every other.
func mapResolver(m map[string]string) Resolver {
	return func(_ context.Context, host string) (netip.Addr, error) {
		a, ok := m[host]
		if !ok {
			return netip.Addr{}, errors.New("no such host")
		}
		return netip.MustParseAddr(a), nil
	}
}

// noResolver fails the test when Desired asks it anything.
func noResolver(t *testing.T) Resolver {
	return func(_ context.Context, host string) (netip.Addr, error) {
		t.Errorf("resolver asked for %q", host)
		return netip.Addr{}, errors.New("unexpected lookup")
	}
}

func TestDesired(t *testing.T) {
	tests := []struct {
		name   string
		public []bool
		self   string
		want   string
		relay  string
	}{
		{
			name:   "two public nodes",
			public: []bool{true, true},
			self:   "node1",
			relay:  "node1",
			want:   "node2 AgICAg 198.18.0.2:40002 10.20.2.0/24,fd3c:9a1e:77b2:2::/64 25s\n",
		},
		{
			name:   "one hidden, seen from a public node",
			public: []bool{true, true, false},
			self:   "node2",
			relay:  "node1",
			want: "node1 AQEBAQ 198.18.0.1:40001 10.20.1.0/24,fd3c:9a1e:77b2:1::/64 25s\n" +
				"node3 AwMDAw - 10.20.3.0/24,fd3c:9a1e:77b2:3::/64 0s\n",
		},
		{
			name:   "one hidden, seen from the hidden node",
			public: []bool{true, true, false},
			self:   "node3",
			relay:  "node1",
			want: "node1 AQEBAQ 198.18.0.1:40001 10.20.1.0/24,fd3c:9a1e:77b2:1::/64 25s\n" +
				"node2 AgICAg 198.18.0.2:40002 10.20.2.0/24,fd3c:9a1e:77b2:2::/64 25s\n",
		},
		{
			name:   "two hidden, seen from the first hidden: relay carries the other",
			public: []bool{true, true, false, false},
			self:   "node3",
			relay:  "node1",
			want: "node1 AQEBAQ 198.18.0.1:40001 10.20.1.0/24,10.20.4.0/24,fd3c:9a1e:77b2:1::/64,fd3c:9a1e:77b2:4::/64 25s\n" +
				"node2 AgICAg 198.18.0.2:40002 10.20.2.0/24,fd3c:9a1e:77b2:2::/64 25s\n",
		},
		{
			name:   "two hidden, seen from the second hidden",
			public: []bool{true, true, false, false},
			self:   "node4",
			relay:  "node1",
			want: "node1 AQEBAQ 198.18.0.1:40001 10.20.1.0/24,10.20.3.0/24,fd3c:9a1e:77b2:1::/64,fd3c:9a1e:77b2:3::/64 25s\n" +
				"node2 AgICAg 198.18.0.2:40002 10.20.2.0/24,fd3c:9a1e:77b2:2::/64 25s\n",
		},
		{
			name:   "two hidden, seen from the relay: hidden peers carry only their own",
			public: []bool{true, true, false, false},
			self:   "node1",
			relay:  "node1",
			want: "node2 AgICAg 198.18.0.2:40002 10.20.2.0/24,fd3c:9a1e:77b2:2::/64 25s\n" +
				"node3 AwMDAw - 10.20.3.0/24,fd3c:9a1e:77b2:3::/64 0s\n" +
				"node4 BAQEBA - 10.20.4.0/24,fd3c:9a1e:77b2:4::/64 0s\n",
		},
		{
			name:   "two hidden, seen from the public non-relay",
			public: []bool{true, true, false, false},
			self:   "node2",
			relay:  "node1",
			want: "node1 AQEBAQ 198.18.0.1:40001 10.20.1.0/24,fd3c:9a1e:77b2:1::/64 25s\n" +
				"node3 AwMDAw - 10.20.3.0/24,fd3c:9a1e:77b2:3::/64 0s\n" +
				"node4 BAQEBA - 10.20.4.0/24,fd3c:9a1e:77b2:4::/64 0s\n",
		},
		{
			name:   "everybody hidden",
			public: []bool{false, false, false},
			self:   "node2",
			relay:  "",
			want:   "",
		},
		{
			name:   "alone",
			public: []bool{true},
			self:   "node1",
			relay:  "node1",
			want:   "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSpec(tt.public...)
			got, err := Desired(context.Background(), s, tt.self, noResolver(t))
			require.NoError(t, err)
			assert.Equal(t, tt.want, renderPeers(got))
			assert.Equal(t, tt.relay, Relay(s))
		})
	}
}

func TestDesiredSortsByNameAndRelayIsSmallestPublicID(t *testing.T) {
	s := testSpec(false, true, true, false)
	// List the members backwards: order in the spec must not matter.
	for i, j := 0, len(s.Nodes)-1; i < j; i, j = i+1, j-1 {
		s.Nodes[i], s.Nodes[j] = s.Nodes[j], s.Nodes[i]
	}
	assert.Equal(t, "node2", Relay(s))

	got, err := Desired(context.Background(), s, "node1", nil)
	require.NoError(t, err)
	assert.Equal(t,
		"node2 AgICAg 198.18.0.2:40002 10.20.2.0/24,10.20.4.0/24,fd3c:9a1e:77b2:2::/64,fd3c:9a1e:77b2:4::/64 25s\n"+
			"node3 AwMDAw 198.18.0.3:40003 10.20.3.0/24,fd3c:9a1e:77b2:3::/64 25s\n",
		renderPeers(got))
}

func TestDesiredResolvesHostNames(t *testing.T) {
	s := testSpec(true, true, true)
	s.Nodes[1].Endpoint = "node2.example.org:51820"
	s.Nodes[2].Endpoint = "[2001:db8::3]:51820"
	got, err := Desired(context.Background(), s, "node1", mapResolver(map[string]string{
		"node2.example.org": "::ffff:198.18.7.2", // mapped: comes back as IPv4
	}))
	require.NoError(t, err)
	assert.Equal(t,
		"node2 AgICAg 198.18.7.2:51820 10.20.2.0/24,fd3c:9a1e:77b2:2::/64 25s\n"+
			"node3 AwMDAw [2001:db8::3]:51820 10.20.3.0/24,fd3c:9a1e:77b2:3::/64 25s\n",
		renderPeers(got))
}

func TestDesiredExtraPeers(t *testing.T) {
	s := testSpec(true, true)
	extra := []Peer{
		{Name: "zed", PublicKey: testKey(9), AllowedIPs: []netip.Prefix{
			netip.MustParsePrefix("fd3c:9a1e:77b2:1::c9/128"),
			netip.MustParsePrefix("10.20.1.201/32"),
		}},
		{Name: "alice", PublicKey: testKey(8), AllowedIPs: []netip.Prefix{
			netip.MustParsePrefix("::ffff:10.20.1.200/128"), // mapped: becomes IPv4
			netip.MustParsePrefix("10.20.1.200/32"),         // then a duplicate
		}},
	}
	got, err := Desired(context.Background(), s, "node1", nil, extra...)
	require.NoError(t, err)
	assert.Equal(t,
		"node2 AgICAg 198.18.0.2:40002 10.20.2.0/24,fd3c:9a1e:77b2:2::/64 25s\n"+
			"zed CQkJCQ - 10.20.1.201/32,fd3c:9a1e:77b2:1::c9/128 0s\n"+
			"alice CAgICA - 10.20.1.200/32 0s\n",
		renderPeers(got))
	assert.Equal(t, "fd3c:9a1e:77b2:1::c9/128", extra[0].AllowedIPs[0].String(), "the caller's slice is not reordered")
}

func TestDesiredErrors(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(s *spec.Spec)
		self    string
		extra   []Peer
		resolve Resolver
		is      error
		msg     string
	}{
		{
			name: "not a member",
			self: "node9",
			is:   ErrNotMember,
			msg:  `node "node9"`,
		},
		{
			name: "bad key",
			edit: func(s *spec.Spec) { s.Nodes[1].PublicKey = "not base64" },
			msg:  "nodes[1].public_key",
		},
		{
			name: "bad key of a hidden member seen from a hidden member",
			edit: func(s *spec.Spec) { s.Nodes[2].PublicKey = "" },
			self: "node4",
			msg:  "nodes[2].public_key",
		},
		{
			name: "duplicate key",
			edit: func(s *spec.Spec) { s.Nodes[3].PublicKey = s.Nodes[0].PublicKey },
			is:   ErrDuplicateKey,
			msg:  "nodes[3].public_key: same as nodes[0]",
		},
		{
			name:  "extra peer with a member's key",
			extra: []Peer{{Name: "alice", PublicKey: testKey(1)}},
			is:    ErrDuplicateKey,
			msg:   `peer "alice"`,
		},
		{
			name: "extra peers with one key",
			extra: []Peer{
				{Name: "alice", PublicKey: testKey(8)},
				{Name: "bob", PublicKey: testKey(8)},
			},
			is:  ErrDuplicateKey,
			msg: `peer "bob"`,
		},
		{
			name:  "extra peer with a member's subnet",
			extra: []Peer{{Name: "alice", PublicKey: testKey(8), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.20.2.7/24")}}},
			is:    ErrDuplicatePrefix,
			msg:   `peer "alice": 10.20.2.0/24 is also peer "node2"'s`,
		},
		{
			name: "member's subnet inside this node's",
			edit: func(s *spec.Spec) { s.Nodes[1].Subnet = netip.MustParsePrefix("10.20.1.128/25") },
			is:   ErrOverlapsSelf,
			msg:  `peer "node2": 10.20.1.128/25 is inside this node's 10.20.1.0/24`,
		},
		{
			name: "hidden member's subnet relayed over this node's",
			edit: func(s *spec.Spec) { s.Nodes[3].Subnet = netip.MustParsePrefix("10.20.3.128/25") },
			self: "node3",
			is:   ErrOverlapsSelf,
			msg:  `peer "node1": 10.20.3.128/25 is inside this node's 10.20.3.0/24`,
		},
		{
			name: "verbatim allowed IP inside this node's subnet",
			edit: func(s *spec.Spec) { s.Nodes[1].AllowedIPs = []netip.Prefix{netip.MustParsePrefix("10.20.1.64/26")} },
			is:   ErrOverlapsSelf,
			msg:  `peer "node2": 10.20.1.64/26 is inside this node's 10.20.1.0/24`,
		},
		{
			name:  "extra peer with an invalid prefix",
			extra: []Peer{{Name: "alice", PublicKey: testKey(8), AllowedIPs: []netip.Prefix{{}}}},
			msg:   `peer "alice": invalid allowed IP`,
		},
		{
			name: "subnet outside the range",
			edit: func(s *spec.Spec) { s.Nodes[2].Subnet = netip.MustParsePrefix("10.99.3.0/24") },
			msg:  "nodes[2].subnet",
		},
		{
			name: "bad endpoint",
			edit: func(s *spec.Spec) { s.Nodes[1].Endpoint = "198.18.0.2" },
			msg:  "nodes[1].endpoint",
		},
		{
			name:    "unresolvable host",
			edit:    func(s *spec.Spec) { s.Nodes[1].Endpoint = "node2.example.org:51820" },
			resolve: mapResolver(nil),
			msg:     `nodes[1].endpoint: cannot resolve host "node2.example.org": no such host`,
		},
		{
			name: "host name without a resolver",
			edit: func(s *spec.Spec) { s.Nodes[1].Endpoint = "node2.example.org:51820" },
			is:   ErrNoResolver,
			msg:  `nodes[1].endpoint: cannot resolve host "node2.example.org"`,
		},
		{
			name:    "resolver returns nothing",
			edit:    func(s *spec.Spec) { s.Nodes[1].Endpoint = "node2.example.org:51820" },
			resolve: func(context.Context, string) (netip.Addr, error) { return netip.Addr{}, nil },
			msg:     "nodes[1].endpoint: cannot resolve host",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSpec(true, true, false, false)
			if tt.edit != nil {
				tt.edit(s)
			}
			self := tt.self
			if self == "" {
				self = "node1"
			}
			got, err := Desired(context.Background(), s, self, tt.resolve, tt.extra...)
			require.Error(t, err)
			assert.Nil(t, got)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
			assert.ErrorContains(t, err, tt.msg)
		})
	}
}

func TestDesiredPassesContextToResolver(t *testing.T) {
	s := testSpec(true, true)
	s.Nodes[1].Endpoint = "node2.example.org:51820"
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Desired(ctx, s, "node1", func(ctx context.Context, _ string) (netip.Addr, error) {
		return netip.Addr{}, ctx.Err()
	})
	require.ErrorIs(t, err, context.Canceled)
}
