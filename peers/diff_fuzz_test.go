package peers

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// fuzzBytes hands out the fuzz input one byte at a time, zeros once it runs
// out.
type fuzzBytes []byte

func (b *fuzzBytes) next() byte {
	if len(*b) == 0 {
		return 0
	}
	c := (*b)[0]
	*b = (*b)[1:]
	return c
}

const fuzzKeys = 6

var (
	fuzzPrefixes = []netip.Prefix{
		netip.MustParsePrefix("10.20.1.0/24"),
		netip.MustParsePrefix("10.20.2.0/24"),
		netip.MustParsePrefix("10.20.0.0/16"), // overlaps the /24s
		netip.MustParsePrefix("10.20.1.200/32"),
		netip.MustParsePrefix("fd3c:9a1e:77b2:1::/64"),
		netip.MustParsePrefix("fd3c:9a1e:77b2:2::/64"),
		netip.MustParsePrefix("fd3c:9a1e:77b2:1::c8/128"),
		netip.MustParsePrefix("0.0.0.0/0"),
	}
	fuzzEndpoints = []netip.AddrPort{
		{}, // hidden
		netip.MustParseAddrPort("198.18.0.1:40001"),
		netip.MustParseAddrPort("198.18.0.1:40002"),
		netip.MustParseAddrPort("[2001:db8::1]:40001"),
	}
	fuzzKeepalives = []time.Duration{0, Keepalive, 10 * time.Second}
)

// fuzzPeers draws a peer set from b: for each of fuzzKeys keys one byte says
// whether the peer exists, its endpoint and its keepalive; then for each of
// fuzzPrefixes one byte says which peer owns it, if any (a prefix belongs to
// one peer at most, as on a device and as Desired guarantees).
func fuzzPeers(b *fuzzBytes) []Peer {
	var ps []Peer
	for k := range fuzzKeys {
		c := b.next()
		if c&1 == 0 {
			continue
		}
		ps = append(ps, Peer{
			Name:      fmt.Sprintf("peer%d", k),
			PublicKey: testKey(k + 1),
			Endpoint:  fuzzEndpoints[int(c>>1)%len(fuzzEndpoints)],
			Keepalive: fuzzKeepalives[int(c>>3)%len(fuzzKeepalives)],
		})
	}
	for _, p := range fuzzPrefixes {
		owner := int(b.next()) % (fuzzKeys + 1)
		if i := slices.IndexFunc(ps, func(q Peer) bool { return q.PublicKey == testKey(owner+1) }); i >= 0 {
			ps[i].AllowedIPs = append(ps[i].AllowedIPs, p)
		}
	}
	for i := range ps {
		ps[i].AllowedIPs, _ = canonical(ps[i].AllowedIPs)
	}
	// Shuffle the order by one byte, so order never matters.
	if n := len(ps); n > 1 {
		r := int(b.next()) % n
		ps = append(ps[r:], ps[:r]...)
	}
	return ps
}

// FuzzDiff checks that applying Diff's config to a device holding any peer
// set yields exactly the desired set, that a peer already right never appears
// in the config, that each entry carries only the fields that changed, and
// that diffing again gives nothing to do.
func FuzzDiff(f *testing.F) {
	// Empty device, empty desired.
	f.Add([]byte{})
	// Device has every peer, desired has none.
	f.Add([]byte{1, 1, 1, 1, 1, 1, 0, 1, 2, 3, 4, 5, 0, 1})
	// Device empty, desired has every peer, public and hidden, with prefixes.
	f.Add([]byte{0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 0, 3, 5, 1, 9, 17, 7, 0, 1, 2, 3, 4, 5, 6, 0, 2})
	// Same peers on both sides, prefixes moving between them.
	f.Add([]byte{3, 11, 1, 0, 0, 0, 0, 0, 1, 1, 2, 0, 6, 6, 0, 3, 11, 1, 0, 0, 0, 1, 1, 0, 0, 2, 2, 0, 6, 1})
	// A hidden peer whose endpoint the device learned: nothing to do.
	// (Device: peer0 at endpoint 1 owning every prefix; desired: peer0
	// hidden owning every prefix.)
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	// Keepalive and endpoint changes, a prefix moving from peer1 to peer0.
	f.Add([]byte{11, 19, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 25, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})

	f.Fuzz(func(t *testing.T, data []byte) {
		b := fuzzBytes(data)
		current, desired := fuzzPeers(&b), fuzzPeers(&b)

		dev := &fakeDevice{}
		for _, p := range current {
			dev.apply(wgtypes.Config{Peers: []wgtypes.PeerConfig{addConfig(p)}})
		}
		if m := deviceMatches(dev.snapshot(), current); m != "" {
			t.Fatalf("setting up the device: %s", m)
		}
		before := dev.snapshot()

		cfg := Diff(desired, before)
		if cfg.ReplacePeers || cfg.PrivateKey != nil || cfg.ListenPort != nil || cfg.FirewallMark != nil {
			t.Fatalf("config touches the device: %+v", cfg)
		}
		checkEntries(t, cfg, before, desired)

		dev.apply(cfg)
		if m := deviceMatches(dev.snapshot(), desired); m != "" {
			t.Fatalf("after applying\n%s: %s", renderConfig(cfg, nil), m)
		}
		if again := Diff(desired, dev.snapshot()); len(again.Peers) != 0 {
			t.Fatalf("second diff not empty:\n%s", renderConfig(again, nil))
		}
	})
}

// checkEntries checks each config entry against the peer it concerns.
func checkEntries(t *testing.T, cfg wgtypes.Config, before []wgtypes.Peer, desired []Peer) {
	t.Helper()
	seen := make(map[wgtypes.Key]bool)
	for _, pc := range cfg.Peers {
		if seen[pc.PublicKey] {
			t.Fatalf("peer %s appears twice", pc.PublicKey)
		}
		seen[pc.PublicKey] = true
		if pc.PresharedKey != nil {
			t.Fatalf("peer %s: preshared key set", pc.PublicKey)
		}
		ci := slices.IndexFunc(before, func(p wgtypes.Peer) bool { return p.PublicKey == pc.PublicKey })
		di := slices.IndexFunc(desired, func(p Peer) bool { return p.PublicKey == pc.PublicKey })
		switch {
		case ci < 0 && di < 0:
			t.Fatalf("peer %s is neither on the device nor desired", pc.PublicKey)
		case di < 0:
			if !pc.Remove || pc.UpdateOnly || pc.Endpoint != nil || pc.PersistentKeepaliveInterval != nil || pc.AllowedIPs != nil {
				t.Fatalf("peer %s no longer desired, want a bare remove: %+v", pc.PublicKey, pc)
			}
		case ci < 0:
			if pc.Remove || pc.UpdateOnly {
				t.Fatalf("peer %s is new, want an add: %+v", pc.PublicKey, pc)
			}
		default:
			d, c := desired[di], before[ci]
			if samePeer(d, c) == "" {
				t.Fatalf("peer %s is already right but appears in the config: %+v", pc.PublicKey, pc)
			}
			if pc.Remove || !pc.UpdateOnly {
				t.Fatalf("peer %s exists, want an update: %+v", pc.PublicKey, pc)
			}
			if pc.Endpoint != nil && c.Endpoint != nil && pc.Endpoint.String() == c.Endpoint.String() {
				t.Fatalf("peer %s: endpoint %s set again", pc.PublicKey, pc.Endpoint)
			}
			if pc.PersistentKeepaliveInterval != nil && *pc.PersistentKeepaliveInterval == c.PersistentKeepaliveInterval {
				t.Fatalf("peer %s: keepalive %s set again", pc.PublicKey, c.PersistentKeepaliveInterval)
			}
			if pc.ReplaceAllowedIPs != (pc.AllowedIPs != nil) {
				t.Fatalf("peer %s: allowed IPs given without replacing, or the reverse", pc.PublicKey)
			}
			if pc.ReplaceAllowedIPs && sameAllowed(pc.AllowedIPs, c.AllowedIPs) {
				t.Fatalf("peer %s: allowed IPs %s set again", pc.PublicKey, renderIPNets(pc.AllowedIPs))
			}
		}
	}
}

// sameAllowed reports whether a and b hold the same prefixes.
func sameAllowed(a, b []net.IPNet) bool {
	set := func(ns []net.IPNet) []string {
		var s []string
		for _, n := range ns {
			s = append(s, n.String())
		}
		slices.Sort(s)
		return slices.Compact(s)
	}
	return slices.Equal(set(a), set(b))
}
