package zos

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/spec"
)

// Plan is what realizing a workload on a node takes: the znet spec and the
// key and port the client chose for the node.
type Plan struct {
	Spec *spec.Spec
	// PrivateKey is the node's imported WireGuard key; it must be stored
	// like a reserved key and never shown.
	PrivateKey wgtypes.Key
	ListenPort int
}

// NetworkName returns the znet network name of twin's workload name: "z"
// and the first 15 hex digits of sha256("<twin>:<name>"). zos names may
// hold characters a DNS label may not, so the name cannot be used as is.
func NetworkName(twin uint32, name string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d:%s", twin, name))
	return "z" + hex.EncodeToString(sum[:8])[:15]
}

// LinkAddress returns the address zos gives the owner of subnet on its
// WireGuard device: 100.64.<o2>.<o3>, the second and third octets of the
// subnet.
func LinkAddress(subnet netip.Prefix) netip.Addr {
	a := subnet.Addr().As4()
	return netip.AddrFrom4([4]byte{100, 64, a[1], a[2]})
}

// PeerID returns the member id a peer gets in the spec: zos peers have no
// names, and their key is the one thing that identifies them.
func PeerID(publicKey string) string {
	sum := sha256.Sum256([]byte(publicKey))
	return "p" + hex.EncodeToString(sum[:6])
}

// Translate checks w, owned by twin, and returns its plan for node self.
// Every refusal is a *spec.FieldError naming the workload's field.
func Translate(twin uint32, w *Workload, self string) (*Plan, error) {
	if twin == 0 {
		return nil, fail("twin", "must be a twin id (1 or more)")
	}
	d := &w.Data
	ipRange, err := parseRange(d.IPRange)
	if err != nil {
		return nil, err
	}
	subnet, err := parseSubnet(d.Subnet, "data.subnet", ipRange)
	if err != nil {
		return nil, err
	}
	// CheckKey never quotes the key: this message ends up in answers and logs.
	if err := spec.CheckKey(string(d.WireguardPrivateKey)); err != nil {
		return nil, fail("data.wireguard_private_key", "%v", err)
	}
	key, err := wgtypes.ParseKey(string(d.WireguardPrivateKey))
	if err != nil {
		return nil, err // CheckKey took it: not reached
	}
	if d.WireguardListenPort == 0 {
		return nil, fail("data.wireguard_listen_port", "is required (1-65535)")
	}
	s := &spec.Spec{
		Name:       NetworkName(twin, w.Name),
		Generation: w.Version + 1,
		IPRange:    ipRange,
		Nodes: []spec.Node{{
			ID: self, Subnet: subnet, PublicKey: key.PublicKey().String(), LinkAddress: LinkAddress(subnet),
		}},
	}
	t := translation{ipRange: ipRange, subnet: subnet, own: key.PublicKey().String()}
	for i := range d.Peers {
		n, err := t.peer(i, &d.Peers[i])
		if err != nil {
			return nil, err
		}
		s.Nodes = append(s.Nodes, n)
	}
	s.SetDefaults()
	if err := s.Validate(self); err != nil {
		return nil, fmt.Errorf("the translated spec: %w", err)
	}
	return &Plan{Spec: s, PrivateKey: key, ListenPort: int(d.WireguardListenPort)}, nil
}

// parseRange parses ip_range, keeping to what a znet range may be.
func parseRange(text string) (netip.Prefix, error) {
	const f = "data.ip_range"
	p, err := parsePrefix(text, f)
	if err != nil {
		return p, err
	}
	if p.Bits() < spec.MinRangeBits || p.Bits() > spec.MaxRangeBits {
		return p, fail(f, "prefix length /%d is out of range (/%d../%d)", p.Bits(), spec.MinRangeBits, spec.MaxRangeBits)
	}
	return p, nil
}

// parseSubnet parses a subnet that must lie inside ipRange.
func parseSubnet(text, f string, ipRange netip.Prefix) (netip.Prefix, error) {
	p, err := parsePrefix(text, f)
	if err != nil {
		return p, err
	}
	if p.Bits() < ipRange.Bits() || !ipRange.Contains(p.Addr()) {
		return p, fail(f, "%s is not inside ip_range %s", p, ipRange)
	}
	if p.Bits() > spec.MaxSubnetBits {
		return p, fail(f, "prefix length /%d is too long (at most /%d)", p.Bits(), spec.MaxSubnetBits)
	}
	return p, nil
}

// parsePrefix parses an IPv4 CIDR prefix and masks it: zos keeps host bits
// ("10.20.2.1/24"), and what it means is the network.
func parsePrefix(text, f string) (netip.Prefix, error) {
	if text == "" {
		return netip.Prefix{}, fail(f, "is required")
	}
	p, err := netip.ParsePrefix(text)
	if err != nil {
		return p, fail(f, "%q is not a CIDR prefix (like 10.20.0.0/16)", text)
	}
	if !p.Addr().Is4() {
		return p, fail(f, "%s is not an IPv4 prefix", p)
	}
	return p.Masked(), nil
}

// translation carries what checking one peer needs from the others.
type translation struct {
	ipRange, subnet netip.Prefix
	own             string                  // the node's public key
	keys            map[string]int          // public key -> peer index
	subnets         []netip.Prefix          // usable peer subnets so far
	owners          []int                   // peer index of each of subnets
	allowed         map[netip.Prefix]string // allowed IP -> its field
}

// peer checks peer i and returns its member entry.
func (t *translation) peer(i int, p *Peer) (spec.Node, error) {
	path := func(f string) string { return fmt.Sprintf("data.peers[%d].%s", i, f) }
	err := spec.CheckKey(p.WireguardPublicKey)
	switch {
	case errors.Is(err, spec.ErrKeyNotCanonical):
		key, _ := wgtypes.ParseKey(p.WireguardPublicKey) // 32 bytes: CheckKey decoded it
		return spec.Node{}, fail(path("wireguard_public_key"), "%q is not canonical base64 (did you mean %s?)", p.WireguardPublicKey, key)
	case err != nil:
		return spec.Node{}, fail(path("wireguard_public_key"), "%q %v", p.WireguardPublicKey, err)
	case p.WireguardPublicKey == t.own:
		return spec.Node{}, fail(path("wireguard_public_key"), "is this node's own key")
	}
	if t.keys == nil {
		t.keys, t.allowed = map[string]int{}, map[netip.Prefix]string{}
	}
	if j, dup := t.keys[p.WireguardPublicKey]; dup {
		return spec.Node{}, fail(path("wireguard_public_key"), "same as data.peers[%d].wireguard_public_key", j)
	}
	t.keys[p.WireguardPublicKey] = i
	n := spec.Node{ID: PeerID(p.WireguardPublicKey), PublicKey: p.WireguardPublicKey, Endpoint: p.Endpoint}
	if p.Endpoint != "" {
		if _, _, err := spec.ParseEndpoint(p.Endpoint); err != nil {
			return spec.Node{}, fail(path("endpoint"), "%v", err)
		}
	}
	if n.AllowedIPs, err = t.allowedIPs(path("allowed_ips"), p.AllowedIPs); err != nil {
		return spec.Node{}, err
	}
	subnet, err := parseSubnet(p.Subnet, path("subnet"), t.ipRange)
	if err != nil {
		return spec.Node{}, err
	}
	if subnet == t.subnet && t.isAccessNode(n.AllowedIPs) {
		// The grid client's bug: a hidden node's one peer, the access
		// node, carries the hidden node's own subnet. The access node's
		// real subnet is unknown here, and nothing needs it.
		return n, nil
	}
	if subnet.Overlaps(t.subnet) {
		return spec.Node{}, fail(path("subnet"), "%s overlaps this node's data.subnet %s", subnet, t.subnet)
	}
	for k, q := range t.subnets {
		if subnet.Overlaps(q) {
			return spec.Node{}, fail(path("subnet"), "%s overlaps data.peers[%d].subnet %s", subnet, t.owners[k], q)
		}
	}
	t.subnets, t.owners = append(t.subnets, subnet), append(t.owners, i)
	n.Subnet = subnet
	return n, nil
}

// allowedIPs parses a peer's allowed IPs, masked: each inside ip_range or
// 100.64.0.0/16 and not inside this node's subnet, none given to two peers (WireGuard routes a prefix to one
// peer only, so the second would silently take it from the first).
func (t *translation) allowedIPs(f string, texts []string) ([]netip.Prefix, error) {
	if len(texts) == 0 {
		return nil, fail(f, "is required: a peer without allowed IPs can carry no traffic")
	}
	out := make([]netip.Prefix, 0, len(texts))
	for j, text := range texts {
		fj := fmt.Sprintf("%s[%d]", f, j)
		p, err := parsePrefix(text, fj)
		if err != nil {
			return nil, err
		}
		if !within(t.ipRange, p) && !within(spec.LinkRange, p) {
			return nil, fail(fj, "%s is outside ip_range %s and %s", p, t.ipRange, spec.LinkRange)
		}
		if err := spec.CheckNotOwn(fj, p, "data.subnet", t.subnet); err != nil {
			return nil, err
		}
		if other, dup := t.allowed[p]; dup {
			return nil, fail(fj, "%s is also in %s", p, other)
		}
		t.allowed[p] = fj
		out = append(out, p)
	}
	return out, nil
}

// isAccessNode reports whether allowed is what a hidden node's single peer
// carries: the whole range and 100.64.0.0/16.
func (t *translation) isAccessNode(allowed []netip.Prefix) bool {
	want := []netip.Prefix{t.ipRange, spec.LinkRange}
	got := slices.Clone(allowed)
	slices.SortFunc(got, netip.Prefix.Compare)
	slices.SortFunc(want, netip.Prefix.Compare)
	return slices.Equal(got, slices.Compact(got)) && slices.Equal(got, want)
}

// within reports whether p lies inside r.
func within(r, p netip.Prefix) bool {
	return p.Bits() >= r.Bits() && r.Contains(p.Addr())
}
