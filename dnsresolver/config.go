package dnsresolver

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// ErrInvalidConfig is returned (wrapped) by New, Update and Push when a
// Config cannot be served: a name that is not a DNS label, an address of the
// wrong family or outside the network's ranges, a member listed twice or
// equal to this node, no gateway at all.
var ErrInvalidConfig = errors.New("invalid resolver config")

// Record is one workload of this node: its name (a DNS label) and its
// addresses. At least one address is set.
type Record struct {
	Name string     `json:"name"`
	IPv4 netip.Addr `json:"ipv4"`
	IPv6 netip.Addr `json:"ipv6"`
}

// Member is another node of the network, reached at its gateways over the
// mesh. At least one gateway is set.
type Member struct {
	ID       string     `json:"id"`
	Gateway4 netip.Addr `json:"gateway4"`
	Gateway6 netip.Addr `json:"gateway6"`
	// Subnet4 and Subnet6 are the member's subnets: of the records
	// transferred from it, only addresses inside them are kept, so that a
	// member cannot publish names for another member's addresses. Unset
	// (a Config from a znetd that predates them): only the network's
	// range of that family is checked.
	Subnet4 netip.Prefix `json:"subnet4,omitzero"`
	Subnet6 netip.Prefix `json:"subnet6,omitzero"`
}

// owns reports whether address a may be published by m in the network of
// c: inside m's subnet of a's family, or inside the network's range of
// that family when m has no such subnet.
func (m Member) owns(c Config, a netip.Addr) bool {
	if !c.inRange(a) {
		return false
	}
	switch {
	case a.Is4() && m.Subnet4.IsValid():
		return m.Subnet4.Contains(a)
	case a.Is6() && m.Subnet6.IsValid():
		return m.Subnet6.Contains(a)
	}
	return true
}

// Config is everything a resolver needs; Update takes a whole new Config
// on every change (over the control socket only the change travels, see
// delta.go).
type Config struct {
	// Network names the zone, <network>.internal.
	Network string `json:"network"`
	// NodeID is this node's id; it names <node-id>.node.<network>.internal.
	NodeID string `json:"node_id"`
	// Gateway4 and Gateway6 are this node's gateways: where the resolver
	// listens (UDP and TCP port 53) and the addresses of its node name. At
	// least one is set.
	Gateway4 netip.Addr `json:"gateway4"`
	Gateway6 netip.Addr `json:"gateway6"`
	// IPRange and IPv6Range are the network's ranges. The resolver is
	// authoritative for their reverse names; an unset range has none.
	IPRange   netip.Prefix `json:"ip_range"`
	IPv6Range netip.Prefix `json:"ipv6_range"`
	// Members are the other members of the network.
	Members []Member `json:"members"`
	// Local are this node's workloads.
	Local []Record `json:"local"`
	// Upstreams are the node's resolvers, asked (through Options.Forwarder)
	// for names outside the zone when the network has a way out; none
	// means such names are refused.
	Upstreams []netip.AddrPort `json:"upstreams,omitempty"`
	// Hold are the ids of the members new to the apply that sent this
	// Config (znetd's: members the spec before did not have). Only to
	// those may the resolver hold back its first sync when it starts them
	// (quietFor): a deploy starts them at the far side at the same time,
	// and their WireGuard links are staggered. Every other member it
	// starts (all of them when a restarted data plane gets its Config
	// again) it syncs at once. Omitted when empty, which a resolver from
	// before the field needs (it refuses unknown fields), and which an
	// older znetd's Config therefore means: nothing is held. An id that
	// names no member holds nothing.
	Hold []string `json:"hold,omitempty"`
}

// zoneSuffix is the parent of every network's zone.
const zoneSuffix = "internal"

// Labels with a meaning in the zone.
const (
	nodeLabel  = "node"   // <node-id>.node.<zone>
	localLabel = "_local" // <node-id>._local.<zone>, the transfer zones
)

// normalized returns a canonical copy of c (names lower case, addresses
// unmapped, prefixes masked, members and records sorted) or an error
// wrapping ErrInvalidConfig.
func (c Config) normalized() (Config, error) {
	out := Config{
		Network:   strings.ToLower(c.Network),
		NodeID:    strings.ToLower(c.NodeID),
		Gateway4:  c.Gateway4.Unmap(),
		Gateway6:  c.Gateway6,
		IPRange:   c.IPRange.Masked(),
		IPv6Range: c.IPv6Range.Masked(),
	}
	if err := checkLabel("network", out.Network); err != nil {
		return Config{}, err
	}
	if err := checkLabel("node id", out.NodeID); err != nil {
		return Config{}, err
	}
	if c.IPRange.IsValid() && !out.IPRange.Addr().Is4() {
		return Config{}, invalid("ip range %s is not IPv4", c.IPRange)
	}
	if c.IPv6Range.IsValid() && (!out.IPv6Range.Addr().Is6() || out.IPv6Range.Addr().Is4In6()) {
		return Config{}, invalid("ipv6 range %s is not IPv6", c.IPv6Range)
	}
	if !out.Gateway4.IsValid() && !out.Gateway6.IsValid() {
		return Config{}, invalid("node %s has no gateway", out.NodeID)
	}
	if err := out.checkPair("gateway of node", out.NodeID, out.Gateway4, out.Gateway6); err != nil {
		return Config{}, err
	}
	// Sized up front: with a thousand members, growing these maps was a
	// third of the cost of an update.
	seen := make(map[string]bool, len(c.Members)+1)
	seen[out.NodeID] = true
	gateways := make(map[netip.Addr]string, 2*len(c.Members)+2)
	out.Members = make([]Member, 0, len(c.Members))
	if err := addGateways(gateways, out.NodeID, out.Gateway4, out.Gateway6); err != nil {
		return Config{}, err
	}
	for _, m := range c.Members {
		m, err := out.member(m)
		if err != nil {
			return Config{}, err
		}
		if seen[m.ID] {
			return Config{}, invalid("node %s listed twice", m.ID)
		}
		seen[m.ID] = true
		if err := out.checkGateways(m); err != nil {
			return Config{}, err
		}
		if err := addGateways(gateways, m.ID, m.Gateway4, m.Gateway6); err != nil {
			return Config{}, err
		}
		out.Members = append(out.Members, m)
	}
	names := map[string]bool{}
	for _, r := range c.Local {
		r = Record{Name: strings.ToLower(r.Name), IPv4: r.IPv4.Unmap(), IPv6: r.IPv6}
		if err := checkLabel("workload name", r.Name); err != nil {
			return Config{}, err
		}
		if names[r.Name] {
			return Config{}, invalid("workload %s listed twice", r.Name)
		}
		names[r.Name] = true
		if !r.IPv4.IsValid() && !r.IPv6.IsValid() {
			return Config{}, invalid("workload %s has no address", r.Name)
		}
		if err := out.checkPair("address of workload", r.Name, r.IPv4, r.IPv6); err != nil {
			return Config{}, err
		}
		out.Local = append(out.Local, r)
	}
	for _, u := range c.Upstreams {
		u = netip.AddrPortFrom(u.Addr().Unmap(), u.Port())
		if !u.Addr().IsValid() || u.Port() == 0 {
			return Config{}, invalid("upstream %s is not an address and port", u)
		}
		out.Upstreams = append(out.Upstreams, u)
	}
	for _, id := range c.Hold {
		id = strings.ToLower(id)
		if err := checkLabel("held member id", id); err != nil {
			return Config{}, err
		}
		out.Hold = append(out.Hold, id)
	}
	slices.Sort(out.Hold)
	slices.SortFunc(out.Members, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(out.Local, func(a, b Record) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// member returns m normalized (see normalized) and checks its id and
// subnets against c (normalized). What needs the other members (ids and
// gateways not shared) and its gateways (checkGateways) are the caller's.
func (c Config) member(m Member) (Member, error) {
	m = Member{
		ID: strings.ToLower(m.ID), Gateway4: m.Gateway4.Unmap(), Gateway6: m.Gateway6,
		Subnet4: m.Subnet4.Masked(), Subnet6: m.Subnet6.Masked(),
	}
	if err := checkLabel("member id", m.ID); err != nil {
		return Member{}, err
	}
	if err := c.checkSubnets(m); err != nil {
		return Member{}, err
	}
	return m, nil
}

// checkGateways checks that member m (normalized) has a gateway and that
// its gateways are addresses of the network.
func (c Config) checkGateways(m Member) error {
	if !m.Gateway4.IsValid() && !m.Gateway6.IsValid() {
		return invalid("member %s has no gateway", m.ID)
	}
	return c.checkPair("gateway of member", m.ID, m.Gateway4, m.Gateway6)
}

// checkPair checks an IPv4 and an IPv6 address (each may be unset) of
// what id (what and id apart: joined only for an error, as a thousand
// members are common): the right family, no zone, inside the network's
// range of that family when it has one.
func (c Config) checkPair(what, id string, v4, v6 netip.Addr) error {
	if v4.IsValid() && (!v4.Is4() || !c.inRange(v4)) {
		return invalid("%s %s: %s is not an IPv4 address in the range %s", what, id, v4, c.IPRange)
	}
	if v6.IsValid() && (!v6.Is6() || v6.Is4In6() || !c.inRange(v6)) {
		return invalid("%s %s: %s is not an IPv6 address in the range %s", what, id, v6, c.IPv6Range)
	}
	return nil
}

// checkSubnets checks member m's subnets (each may be unset): the right
// family, inside the network's range of that family, and holding m's
// gateway of that family.
func (c Config) checkSubnets(m Member) error {
	for _, s := range []struct {
		p  netip.Prefix
		gw netip.Addr
		v4 bool
	}{{m.Subnet4, m.Gateway4, true}, {m.Subnet6, m.Gateway6, false}} {
		a := s.p.Addr()
		switch {
		case !s.p.IsValid():
		case a.Is4() != s.v4 || a.Is4In6():
			return invalid("subnet of member %s: %s is of the wrong family", m.ID, s.p)
		case !c.inRange(a) || s.p.Bits() < c.rangeOf(a).Bits():
			return invalid("subnet of member %s: %s is not inside the network's range", m.ID, s.p)
		case s.gw.IsValid() && !s.p.Contains(s.gw):
			return invalid("subnet of member %s: %s does not hold its gateway %s", m.ID, s.p, s.gw)
		}
	}
	return nil
}

// rangeOf returns the network's range of a's family (maybe unset).
func (c Config) rangeOf(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return c.IPRange
	}
	return c.IPv6Range
}

// addGateways adds node id's gateways to seen (gateway -> node id) or
// returns an error if another node has one of them: members are told apart
// by their gateway addresses.
func addGateways(seen map[netip.Addr]string, id string, gws ...netip.Addr) error {
	for _, g := range gws {
		if !g.IsValid() {
			continue
		}
		if other, ok := seen[g]; ok {
			return invalid("nodes %s and %s share the gateway %s", other, id, g)
		}
		seen[g] = id
	}
	return nil
}

// inRange reports whether a can be one of the network's addresses: without
// zone, and inside the range of its family if that is set.
func (c Config) inRange(a netip.Addr) bool {
	switch {
	case !a.IsValid() || a.Zone() != "":
		return false
	case a.Is4():
		return !c.IPRange.IsValid() || c.IPRange.Contains(a)
	case a.Is4In6():
		return false
	}
	return !c.IPv6Range.IsValid() || c.IPv6Range.Contains(a)
}

// holds reports whether c (normalized) holds member id back at its start
// (Config.Hold).
func (c Config) holds(id string) bool {
	_, ok := slices.BinarySearch(c.Hold, id)
	return ok
}

// zone returns the name of the network's zone, "<network>.internal.".
func (c Config) zone() string { return c.Network + "." + zoneSuffix + "." }

// localZone returns the name of node id's transfer zone.
func (c Config) localZone(id string) string { return id + "." + localLabel + "." + c.zone() }

// checkLabel checks that s is a DNS label as znet uses them: 1 to 63
// characters of a-z, 0-9 and '-', not starting or ending with '-'.
func checkLabel(what, s string) error {
	if !isLabel(s) {
		return invalid("%s %q is not a DNS label", what, s)
	}
	return nil
}

// isLabel reports whether s is a lower-case DNS label (see checkLabel).
func isLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// invalid returns an error wrapping ErrInvalidConfig.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalidConfig)
}
