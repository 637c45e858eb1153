package spec_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/spec"
)

// TestCheckNotOwn pins the one check, shared by spec, zos and peers, that
// no other peer's allowed IP lies inside this node's own subnets.
func TestCheckNotOwn(t *testing.T) {
	own := []netip.Prefix{netip.MustParsePrefix("10.20.1.0/24"), netip.MustParsePrefix("fd00:0:0:1::/64")}
	tests := []struct {
		name, field, ownName, p string
		want                    string // "" for no error
	}{
		{"inside", "nodes[1].allowed_ips[0]", "subnet", "10.20.1.128/25",
			"nodes[1].allowed_ips[0]: 10.20.1.128/25 is inside this node's subnet 10.20.1.0/24: that member would take this node's own traffic"},
		{"the subnet itself", "data.peers[0].allowed_ips[2]", "data.subnet", "10.20.1.0/24",
			"data.peers[0].allowed_ips[2]: 10.20.1.0/24 is inside this node's data.subnet 10.20.1.0/24: that member would take this node's own traffic"},
		{"unnamed subnets", `peer "node2"`, "", "fd00:0:0:1::/80",
			`peer "node2": fd00:0:0:1::/80 is inside this node's fd00:0:0:1::/64: that member would take this node's own traffic`},
		{"covers the subnet whole", "f", "subnet", "10.20.0.0/16", ""},
		{"beside it", "f", "subnet", "10.20.2.0/24", ""},
		{"other family", "f", "subnet", "fd00:0:0:2::/64", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := spec.CheckNotOwn(tt.field, netip.MustParsePrefix(tt.p), tt.ownName, own...)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, spec.ErrInvalid)
			assert.EqualError(t, err, tt.want)
		})
	}
}

// TestCheckListenPort pins the one check of a WireGuard listen port.
func TestCheckListenPort(t *testing.T) {
	for _, port := range []int{1, 51820, 65535} {
		assert.NoError(t, spec.CheckListenPort("listen_port", port))
	}
	for _, port := range []int{-1, 0, 65536} {
		err := spec.CheckListenPort("nodes[0].listen_port", port)
		require.ErrorIs(t, err, spec.ErrInvalid)
		assert.EqualError(t, err, fmt.Sprintf("nodes[0].listen_port: %d is not a UDP port (1-65535)", port))
	}
}

// TestCheckKey pins the one check of a WireGuard key and its reasons,
// which never repeat the key.
func TestCheckKey(t *testing.T) {
	good := key(1)
	require.NoError(t, spec.CheckKey(good))
	tests := []struct{ name, key, want string }{
		{"not base64", "not a key!", "is not a base64 WireGuard key of 32 bytes"},
		{"31 bytes", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", "is not a base64 WireGuard key of 32 bytes (it decodes to 31 bytes, want 32)"},
		{"padding bits set", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=", "is not in canonical base64 (wg refuses it)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := spec.CheckKey(tt.key)
			require.EqualError(t, err, tt.want)
			assert.NotContains(t, err.Error(), tt.key)
		})
	}
	require.ErrorIs(t, spec.CheckKey("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="), spec.ErrKeyNotCanonical)
}

// TestInvalid pins the one constructor of a bad field.
func TestInvalid(t *testing.T) {
	err := spec.Invalid("nodes[1].api", "%q is not a URL", "x")
	var fe *spec.FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, spec.FieldError{Field: "nodes[1].api", Reason: `"x" is not a URL`}, *fe)
	assert.ErrorIs(t, err, spec.ErrInvalid)
}
