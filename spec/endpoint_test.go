package spec_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/spec"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port uint16
		bad  string // a substring of the error; "" when in is good
	}{
		{in: "198.18.0.1:40001", host: "198.18.0.1", port: 40001},
		{in: "[fd00::1]:51820", host: "fd00::1", port: 51820},
		{in: "[::ffff:198.18.0.1]:1", host: "::ffff:198.18.0.1", port: 1},
		{in: "node1.example.com:65535", host: "node1.example.com", port: 65535},
		{in: "UPPER-case.Example:7", host: "UPPER-case.Example", port: 7},
		{in: "localhost:0080", host: "localhost", port: 80},
		{in: "a1.b2:9", host: "a1.b2", port: 9},

		{in: "", bad: "missing port"},
		{in: "198.18.0.1", bad: "missing port"},
		{in: "198.18.0.1:", bad: "missing port"},
		{in: ":51820", bad: "missing host"},
		{in: "198.18.0.1:0", bad: "out of range"},
		{in: "198.18.0.1:65536", bad: "out of range"},
		{in: "198.18.0.1:99999999999999999999", bad: "out of range"},
		{in: "198.18.0.1:-1", bad: "not a number"},
		{in: "198.18.0.1:+1", bad: "not a number"},
		{in: "198.18.0.1: 1", bad: "not a number"},
		{in: "198.18.0.256:1", bad: "not a valid IPv4"},
		{in: "1.2.3:1", bad: "not a valid IPv4"},
		{in: "fd00::1", bad: "brackets and a port"},
		{in: "fd00::1:51820", bad: "brackets"},
		{in: "[fd00::1]", bad: "missing port"},
		{in: "[fd00::1]51820", bad: "missing port"},
		{in: "[fd00::1:51820", bad: "missing ']'"},
		{in: "[fe80::1%eth0]:51820", bad: "zone"},
		{in: "[198.18.0.1]:51820", bad: "not an IPv6"},
		{in: "[node1]:51820", bad: "not an IPv6"},
		{in: "-node.example:1", bad: "'-'"},
		{in: "node-.example:1", bad: "'-'"},
		{in: "node..example:1", bad: "empty"},
		{in: "node.example.:1", bad: "empty"},
		{in: "under_score:1", bad: "bad character '_'"},
		{in: "naïve:1", bad: "bad character 'ï'"},
		{in: "a b:1", bad: "bad character ' '"},
		{in: "x:y:1", bad: "neither"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			host, port, err := spec.ParseEndpoint(tt.in)
			if tt.bad != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.bad)
				assert.Contains(t, err.Error(), tt.in, "the error names the endpoint")
				assert.Empty(t, host)
				assert.Zero(t, port)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.host, host)
			assert.Equal(t, tt.port, port)
		})
	}
}

func TestParseEndpointLongNames(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	tests := []struct {
		name string
		host string
		bad  bool
	}{
		{name: "63-character label", host: label63 + ".x"},
		{name: "64-character label", host: label63 + "a.x", bad: true},
		{name: "253 characters", host: label63 + "." + label63 + "." + label63 + "." + label63[:61]},
		{name: "254 characters", host: label63 + "." + label63 + "." + label63 + "." + label63[:62], bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := spec.ParseEndpoint(tt.host + ":1")
			if tt.bad {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}
