package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDNSUpstreams(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, os.WriteFile(conf, []byte("search example\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n"), 0o600))
	ap := netip.MustParseAddrPort
	tests := []struct {
		name, flag, path string
		want             []netip.AddrPort
		err              string
	}{
		{name: "from resolv.conf", path: conf, want: []netip.AddrPort{ap("192.0.2.53:53"), ap("[2001:db8::53]:53")}},
		{name: "no resolv.conf: none", path: filepath.Join(t.TempDir(), "missing")},
		{name: "flag wins", flag: "198.19.7.2, 198.19.7.3:5353,[2001:db8::1]:53", path: conf,
			want: []netip.AddrPort{ap("198.19.7.2:53"), ap("198.19.7.3:5353"), ap("[2001:db8::1]:53")}},
		{name: "a name is not an address", flag: "dns.example", err: `--dns-upstream: "dns.example"`},
		{name: "port 0", flag: "192.0.2.1:0", err: "port 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dnsUpstreams(tt.flag, tt.path)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
