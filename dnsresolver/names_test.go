package dnsresolver

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSplitName(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{in: ".", want: nil, ok: true},
		{in: "Web.Shop.Internal.", want: []string{"web", "shop", "internal"}, ok: true},
		{in: "web.shop.internal", want: []string{"web", "shop", "internal"}, ok: true},
		{in: `w\101b.shop.`, want: []string{"web", "shop"}, ok: true},
		{in: `w\069b.shop.`, want: []string{"web", "shop"}, ok: true},
		{in: `web\.shop.internal.`, want: []string{"web.shop", "internal"}, ok: true},
		{in: `a\\b.`, want: []string{`a\b`}, ok: true},
		{in: `a\000.`, want: []string{"a\x00"}, ok: true},
		{in: "", ok: false},
		{in: "a..b.", ok: false},
		{in: ".a.", ok: false},
		{in: `a\`, ok: false},
		{in: `a\25`, ok: false},
		{in: `a\256.`, ok: false},
		{in: string(make([]byte, 64)) + ".", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := splitName(tt.in)
			assert.Equal(t, tt.ok, ok)
			if tt.ok {
				assert.Equal(t, tt.want, got)
			}
		})
	}
}

func TestParseReverse(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		p     string
		extra bool
		ok    bool
	}{
		{name: "full v4", in: "5.1.20.10.in-addr.arpa.", p: "10.20.1.5/32", ok: true},
		{name: "partial v4", in: "20.10.in-addr.arpa.", p: "10.20.0.0/16", ok: true},
		{name: "in-addr.arpa", in: "in-addr.arpa.", p: "0.0.0.0/0", ok: true},
		{name: "below a full v4", in: "7.5.1.20.10.in-addr.arpa.", p: "10.20.1.5/32", extra: true, ok: true},
		{name: "bad octet", in: "256.1.20.10.in-addr.arpa.", p: "10.20.1.0/24", extra: true, ok: true},
		{name: "leading zero", in: "01.20.10.in-addr.arpa.", p: "10.20.0.0/16", extra: true, ok: true},
		{name: "full v6", in: "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.2.b.7.7.e.1.a.9.c.3.d.f.ip6.arpa.",
			p: "fd3c:9a1e:77b2:1::5/128", ok: true},
		{name: "partial v6", in: "2.b.7.7.e.1.a.9.c.3.d.f.ip6.arpa.", p: "fd3c:9a1e:77b2::/48", ok: true},
		{name: "odd nibbles", in: "d.f.ip6.arpa.", p: "fd00::/8", ok: true},
		{name: "one nibble", in: "f.ip6.arpa.", p: "f000::/4", ok: true},
		{name: "two-digit nibble", in: "fd.ip6.arpa.", p: "::/0", extra: true, ok: true},
		{name: "forward name", in: "web.shop.internal.", ok: false},
		{name: "arpa", in: "arpa.", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			labels, ok := splitName(tt.in)
			assert.True(t, ok)
			p, extra, ok := parseReverse(labels)
			assert.Equal(t, tt.ok, ok)
			if tt.ok {
				assert.Equal(t, tt.p, p.String())
				assert.Equal(t, tt.extra, extra)
			}
		})
	}
}

func TestReverseName(t *testing.T) {
	assert.Equal(t, "20.10.in-addr.arpa.", reverseName(netip.MustParsePrefix("10.20.0.0/16")))
	assert.Equal(t, "5.1.20.10.in-addr.arpa.", reverseName(netip.MustParsePrefix("10.20.1.5/32")))
	assert.Equal(t, "2.b.7.7.e.1.a.9.c.3.d.f.ip6.arpa.", reverseName(netip.MustParsePrefix("fd3c:9a1e:77b2::/48")))
	assert.Equal(t, "d.f.ip6.arpa.", reverseName(netip.MustParsePrefix("fd00::/8")))
	assert.Equal(t, 16, apexBits(netip.MustParsePrefix("10.16.0.0/12")))
	assert.Equal(t, 48, apexBits(netip.MustParsePrefix("fd00::/46")))
	assert.Equal(t, 24, apexBits(netip.MustParsePrefix("10.20.1.0/24")))
}
