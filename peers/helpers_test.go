package peers

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/znet/znet/spec"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// testKey is a public key made of the byte i repeated: distinct per i and
// recognisable by its base64 prefix ("AQEB" for 1, "AgIC" for 2, ...).
func testKey(i int) wgtypes.Key {
	var k wgtypes.Key
	for j := range k {
		k[j] = byte(i)
	}
	return k
}

// testSpec builds network "shop" (10.20.0.0/16, fd3c:9a1e:77b2::/48) whose
// node i+1 is "node<i+1>" with subnet 10.20.<i+1>.0/24, key testKey(i+1) and
// endpoint 198.18.0.<i+1>:4000<i+1> when public[i], hidden otherwise.
func testSpec(public ...bool) *spec.Spec {
	s := &spec.Spec{
		Name:       "shop",
		Generation: 1,
		IPRange:    netip.MustParsePrefix("10.20.0.0/16"),
		IPv6Range:  netip.MustParsePrefix("fd3c:9a1e:77b2::/48"),
		MTU:        spec.DefaultMTU,
	}
	for i, pub := range public {
		n := spec.Node{
			ID:        fmt.Sprintf("node%d", i+1),
			Subnet:    netip.MustParsePrefix(fmt.Sprintf("10.20.%d.0/24", i+1)),
			PublicKey: testKey(i + 1).String(),
		}
		if pub {
			n.Endpoint = fmt.Sprintf("198.18.0.%d:4000%d", i+1, i+1)
		}
		s.Nodes = append(s.Nodes, n)
	}
	return s
}

// renderPeers writes one line per peer: name, key prefix, endpoint ("-" when
// none), allowed IPs and keepalive.
func renderPeers(ps []Peer) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s %s %s %s %s\n", p.Name, p.PublicKey.String()[:6],
			renderAddrPort(p.Endpoint), renderPrefixes(p.AllowedIPs), p.Keepalive)
	}
	return b.String()
}

func renderAddrPort(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "-"
	}
	return ap.String()
}

func renderPrefixes(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "-"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func renderIPNets(ns []net.IPNet) string {
	if len(ns) == 0 {
		return "-"
	}
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.String()
	}
	return strings.Join(s, ",")
}

// renderConfig writes one line per peer of cfg, naming the peer by names
// (key -> name): "name remove", or "name add|update" followed by only the
// fields the entry sets.
func renderConfig(cfg wgtypes.Config, names map[wgtypes.Key]string) string {
	var b strings.Builder
	if cfg.PrivateKey != nil || cfg.ListenPort != nil || cfg.FirewallMark != nil || cfg.ReplacePeers {
		b.WriteString("device fields set!\n")
	}
	for _, pc := range cfg.Peers {
		b.WriteString(names[pc.PublicKey])
		switch {
		case pc.Remove:
			b.WriteString(" remove")
		case pc.UpdateOnly:
			b.WriteString(" update")
		default:
			b.WriteString(" add")
		}
		if pc.PresharedKey != nil {
			b.WriteString(" psk")
		}
		if pc.Endpoint != nil {
			fmt.Fprintf(&b, " endpoint=%s", pc.Endpoint)
		}
		if pc.PersistentKeepaliveInterval != nil {
			fmt.Fprintf(&b, " keepalive=%s", *pc.PersistentKeepaliveInterval)
		}
		if pc.ReplaceAllowedIPs {
			b.WriteString(" replace-allowed")
		}
		if pc.AllowedIPs != nil {
			fmt.Fprintf(&b, " allowed=%s", renderIPNets(pc.AllowedIPs))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// fakeDevice models the peer list of a WireGuard device the way the kernel
// and wireguard-go apply a wgctrl Config.
type fakeDevice struct {
	peers []*wgtypes.Peer
}

func (d *fakeDevice) find(k wgtypes.Key) int {
	return slices.IndexFunc(d.peers, func(p *wgtypes.Peer) bool { return p.PublicKey == k })
}

// apply mimics wgctrl semantics: ReplacePeers clears the list; Remove deletes
// the peer; UpdateOnly skips a peer the device lacks, otherwise a missing
// peer is created; nil fields are left alone; ReplaceAllowedIPs clears the
// peer's allowed IPs before adding; an allowed IP moves from whichever peer
// had it (a prefix belongs to one peer only) and is stored masked.
func (d *fakeDevice) apply(cfg wgtypes.Config) {
	if cfg.ReplacePeers {
		d.peers = nil
	}
	for _, pc := range cfg.Peers {
		i := d.find(pc.PublicKey)
		if pc.Remove {
			if i >= 0 {
				d.peers = slices.Delete(d.peers, i, i+1)
			}
			continue
		}
		if i < 0 {
			if pc.UpdateOnly {
				continue
			}
			d.peers = append(d.peers, &wgtypes.Peer{PublicKey: pc.PublicKey})
			i = len(d.peers) - 1
		}
		p := d.peers[i]
		if pc.PresharedKey != nil {
			p.PresharedKey = *pc.PresharedKey
		}
		if pc.Endpoint != nil {
			// The userspace device reports IPv4 endpoints in 16-byte form.
			p.Endpoint = &net.UDPAddr{IP: pc.Endpoint.IP.To16(), Port: pc.Endpoint.Port, Zone: pc.Endpoint.Zone}
		}
		if pc.PersistentKeepaliveInterval != nil {
			p.PersistentKeepaliveInterval = *pc.PersistentKeepaliveInterval
		}
		if pc.ReplaceAllowedIPs {
			p.AllowedIPs = nil
		}
		for _, n := range pc.AllowedIPs {
			masked := net.IPNet{IP: n.IP.Mask(n.Mask), Mask: n.Mask}
			for _, other := range d.peers {
				other.AllowedIPs = slices.DeleteFunc(other.AllowedIPs, func(o net.IPNet) bool {
					return o.String() == masked.String()
				})
			}
			p.AllowedIPs = append(p.AllowedIPs, masked)
		}
	}
}

// snapshot returns a deep copy of the device's peers, as wgctrl's Device
// would.
func (d *fakeDevice) snapshot() []wgtypes.Peer {
	out := make([]wgtypes.Peer, 0, len(d.peers))
	for _, p := range d.peers {
		c := *p
		if p.Endpoint != nil {
			e := *p.Endpoint
			c.Endpoint = &e
		}
		c.AllowedIPs = slices.Clone(p.AllowedIPs)
		out = append(out, c)
	}
	return out
}

// deviceMatches returns "" when the device has exactly the desired peers, or
// what differs. A desired peer without an endpoint matches any endpoint the
// device learned.
func deviceMatches(dev []wgtypes.Peer, desired []Peer) string {
	var diffs []string
	if len(dev) != len(desired) {
		diffs = append(diffs, fmt.Sprintf("device has %d peers, want %d", len(dev), len(desired)))
	}
	for _, d := range desired {
		i := slices.IndexFunc(dev, func(p wgtypes.Peer) bool { return p.PublicKey == d.PublicKey })
		if i < 0 {
			diffs = append(diffs, d.Name+" missing")
			continue
		}
		if samePeer(d, dev[i]) != "" {
			diffs = append(diffs, d.Name+": "+samePeer(d, dev[i]))
		}
	}
	return strings.Join(diffs, "; ")
}

// samePeer returns "" when device peer c is what d asks for, else what
// differs; the comparison is independent of the code under test.
func samePeer(d Peer, c wgtypes.Peer) string {
	var diffs []string
	if d.Endpoint.IsValid() {
		got := "-"
		if c.Endpoint != nil {
			got = c.Endpoint.String()
		}
		if got != d.Endpoint.String() {
			diffs = append(diffs, fmt.Sprintf("endpoint %s, want %s", got, d.Endpoint))
		}
	}
	if c.PersistentKeepaliveInterval != d.Keepalive {
		diffs = append(diffs, fmt.Sprintf("keepalive %s, want %s", c.PersistentKeepaliveInterval, d.Keepalive))
	}
	var got []string
	for _, n := range c.AllowedIPs {
		got = append(got, n.String())
	}
	var want []string
	for _, p := range d.AllowedIPs {
		want = append(want, p.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		diffs = append(diffs, fmt.Sprintf("allowed %v, want %v", got, want))
	}
	return strings.Join(diffs, ", ")
}
