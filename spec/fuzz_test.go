package spec_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/znet/znet/spec"
)

// FuzzDecode checks that Decode never panics, that every error is a
// *FieldError matching ErrInvalid, and that whatever it accepts is valid and
// survives a JSON round trip unchanged.
func FuzzDecode(f *testing.F) {
	k1, k2, k3 := key(1), key(2), key(3)
	seeds := []struct {
		doc, self string
	}{
		// The DESIGN.md example, every field set.
		{`{"name":"shop","generation":3,"ip_range":"10.20.0.0/16","ipv6_range":"fd3c:9a1e:77b2::/48","mtu":1420,"nodes":[` +
			`{"id":"node1","subnet":"10.20.1.0/24","public_key":"` + k1 + `","endpoint":"198.18.0.1:40001"},` +
			`{"id":"node2","subnet":"10.20.2.0/24","public_key":"` + k2 + `","endpoint":"198.18.0.2:40007"},` +
			`{"id":"node3","subnet":"10.20.3.0/24","public_key":"` + k3 + `"}]}`, ""},
		// Minimal: defaults for mtu and ipv6_range, self without a key.
		{`{"name":"a","generation":1,"ip_range":"10.0.0.0/8","nodes":[{"id":"n","subnet":"10.0.0.0/30"}]}`, "n"},
		// Host name and IPv6 endpoints, the last subnet number that fits.
		{`{"name":"x","generation":9,"ip_range":"10.0.0.0/8","nodes":[` +
			`{"id":"a","subnet":"10.255.255.0/24","public_key":"` + k1 + `","endpoint":"[fd00::1]:1"},` +
			`{"id":"b","subnet":"10.1.0.0/16","public_key":"` + k2 + `","endpoint":"h.example:65535"}]}`, ""},
		// Overlapping subnets.
		{`{"name":"x","generation":1,"ip_range":"10.0.0.0/16","nodes":[{"id":"a","subnet":"10.0.0.0/24","public_key":"` + k1 +
			`"},{"id":"b","subnet":"10.0.0.128/25","public_key":"` + k2 + `"}]}`, ""},
		// Host bits, wrong family, out-of-range lengths.
		{`{"name":"x","generation":1,"ip_range":"10.0.0.1/16","ipv6_range":"10.0.0.0/8","nodes":[]}`, ""},
		{`{"name":"x","generation":1,"ip_range":"0.0.0.0/0","ipv6_range":"::/0","mtu":70000,"nodes":[]}`, ""},
		// Wrong JSON types, unknown and repeated fields.
		{`{"name":1,"generation":"1","mtu":true,"nodes":{},"extra":null}`, ""},
		{`{"name":"x","name":"y","nodes":[{"id":"a","colour":"red"}]}`, ""},
		// Escapes, numbers at the edges.
		{`{"name":"\u0073hop","generation":18446744073709551615,"mtu":-0,"ip_range":"10.20.0.0/16"}`, ""},
		{`{"generation":1e2,"mtu":1.5}`, ""},
		// Not one object.
		{``, ""},
		{`{"name":"x"`, ""},
		{`{} {}`, ""},
		{`[{"name":"x"}]`, ""},
		{`null`, ""},
		{"\xef\xbb\xbf{}", ""},
		// Verbatim allowed IPs and link addresses (a zos-planned network),
		// a member without a subnet; then ones outside the ranges.
		{`{"name":"z","generation":1,"ip_range":"10.20.0.0/16","nodes":[{"id":"h","subnet":"10.20.4.0/24","link_address":"100.64.20.4"},` +
			`{"id":"a","public_key":"` + k1 + `","endpoint":"198.18.0.1:1","allowed_ips":["10.20.0.0/16","100.64.0.0/16"]}]}`, "h"},
		{`{"name":"z","generation":1,"ip_range":"10.20.0.0/16","nodes":[{"id":"h","subnet":"10.20.4.0/24","link_address":"100.65.0.1"},` +
			`{"id":"a","public_key":"` + k1 + `","allowed_ips":["0.0.0.0/0","10.20.1.1/24",""]}]}`, "h"},
		// Bad endpoints and keys.
		{`{"name":"x","generation":1,"ip_range":"10.0.0.0/16","nodes":[{"id":"a","subnet":"10.0.1.0/24","public_key":"AAAA","endpoint":"[fe80::1%eth0]:0"}]}`, "a"},
	}
	for _, s := range seeds {
		f.Add([]byte(s.doc), s.self)
	}

	f.Fuzz(func(t *testing.T, data []byte, self string) {
		s, err := spec.Decode(data, self)
		if err != nil {
			if s != nil {
				t.Fatalf("Decode returned a spec and an error %v", err)
			}
			var fe *spec.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, spec.ErrInvalid) {
				t.Fatalf("error %v (%T) is not a *FieldError matching ErrInvalid", err, err)
			}
			if fe.Reason == "" {
				t.Fatalf("error for field %q has no reason", fe.Field)
			}
			return
		}
		if err := s.Validate(self); err != nil {
			t.Fatalf("Decode accepted a spec that Validate refuses: %v", err)
		}
		if !s.Equal(s.Clone()) {
			t.Fatalf("spec is not Equal to its clone: %+v", s)
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshalling a decoded spec: %v", err)
		}
		again, err := spec.Decode(out, self)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		if !s.Equal(again) {
			t.Fatalf("round trip changed the spec:\n%+v\n%+v", s, again)
		}
		out2, err := json.Marshal(again)
		if err != nil || string(out) != string(out2) {
			t.Fatalf("marshalling is not stable:\n%s\n%s", out, out2)
		}
	})
}
