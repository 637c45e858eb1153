package access

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/znet/znet/api"
	"github.com/znet/znet/spec"
)

// DefaultKeepalive is the PersistentKeepalive of every config FromGrant
// makes, in seconds: often enough to keep a NAT mapping on the device's side
// open.
const DefaultKeepalive = 25

// ErrInvalid is matched (errors.Is) by every error of Parse, Validate,
// FromGrant and CheckEndpoint about a config or value that wg-quick would
// refuse or that a Config cannot hold.
var ErrInvalid = errors.New("invalid wg-quick config")

// Config is a wg-quick configuration for one access peer. The zero value of
// a field means "no such line" (PrivateKey "", MTU 0, PersistentKeepalive 0,
// Endpoint "", nil lists); PeerPublicKey is required.
type Config struct {
	// PrivateKey is the device's key in base64; "" leaves the PrivateKey
	// line out (the user keeps their own key).
	PrivateKey string
	// Addresses are the device's addresses, e.g. 10.20.1.200/32 and
	// fd3c:9a1e:77b2:1::c8/128.
	Addresses []netip.Prefix
	// DNS lists resolver addresses and search domains, in order, e.g.
	// "10.20.1.1" and "shop.internal". wg-quick tells them apart as it does
	// here: only digits and dots, or a colon, make an address.
	DNS []string
	// MTU is the tunnel's MTU.
	MTU int
	// PeerPublicKey is the node's key for the network, in base64.
	PeerPublicKey string
	// Endpoint is the node's host:port ("[addr]:port" for IPv6).
	Endpoint string
	// AllowedIPs are the network's ranges (masked prefixes).
	AllowedIPs []netip.Prefix
	// PersistentKeepalive is the keepalive interval in seconds.
	PersistentKeepalive int
}

// Render writes c as a wg-quick file in the layout of DESIGN.md: the
// [Interface] keys PrivateKey, Address, DNS, MTU, a blank line, the [Peer]
// keys PublicKey, Endpoint, AllowedIPs, PersistentKeepalive, each on its
// line only when set, lists joined with ", ". Render does not check c: see
// Validate.
func (c Config) Render() string {
	var b strings.Builder
	line := func(key, value string) {
		if value != "" {
			fmt.Fprintf(&b, "%s = %s\n", key, value)
		}
	}
	b.WriteString("[Interface]\n")
	line("PrivateKey", c.PrivateKey)
	line("Address", joinPrefixes(c.Addresses))
	line("DNS", strings.Join(c.DNS, ", "))
	line("MTU", intText(c.MTU))
	b.WriteString("\n[Peer]\n")
	line("PublicKey", c.PeerPublicKey)
	line("Endpoint", c.Endpoint)
	line("AllowedIPs", joinPrefixes(c.AllowedIPs))
	line("PersistentKeepalive", intText(c.PersistentKeepalive))
	return b.String()
}

func joinPrefixes(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, ", ")
}

func intText(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// Validate reports whether c is a config that wg-quick accepts and that
// Parse reads back from Render unchanged: keys in canonical base64,
// addresses neither unspecified nor multicast nor repeated, AllowedIPs
// masked, DNS entries canonical addresses or host names, MTU 68..65535
// (1280 with an IPv6 address), a host:port endpoint, a keepalive of
// 0..65535. The error matches ErrInvalid and names the key.
func (c Config) Validate() error {
	if c.PrivateKey != "" {
		if err := spec.CheckKey(c.PrivateKey); err != nil {
			return invalid("PrivateKey", err)
		}
	}
	for i, p := range c.Addresses {
		if err := checkAddress(p, c.Addresses[:i]); err != nil {
			return invalid("Address", err)
		}
	}
	for _, d := range c.DNS {
		if err := checkDNS(d); err != nil {
			return invalid("DNS", err)
		}
	}
	if c.MTU != 0 {
		if err := checkMTU(c.MTU, c.Addresses); err != nil {
			return invalid("MTU", err)
		}
	}
	if c.PeerPublicKey == "" {
		return invalid("PublicKey", errors.New("missing"))
	}
	if err := spec.CheckKey(c.PeerPublicKey); err != nil {
		return invalid("PublicKey", err)
	}
	if c.Endpoint != "" {
		if err := checkEndpoint(c.Endpoint); err != nil {
			return invalid("Endpoint", err)
		}
	}
	for _, p := range c.AllowedIPs {
		if err := checkAllowedIP(p); err != nil {
			return invalid("AllowedIPs", err)
		}
	}
	if err := checkKeepalive(c.PersistentKeepalive); err != nil {
		return invalid("PersistentKeepalive", err)
	}
	return nil
}

func invalid(key string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrInvalid, key, err)
}

// FromGrant makes the config for the access peer the daemon granted.
// privateKey is the key the CLI made ("" when the user keeps their own).
// endpointOverride replaces the grant's endpoint: "HOST" keeps the grant's
// port, "HOST:PORT" (or "[IPv6]:PORT") replaces both; a bare IPv6 address is
// a host, so an IPv6 host with a port needs brackets. DNS is the grant's
// resolver and the search domain "<network>.internal"; AllowedIPs are the
// network's ranges; the keepalive is DefaultKeepalive.
func FromGrant(g api.AccessGrant, privateKey, endpointOverride string) (Config, error) {
	switch {
	case !g.IPv4.Is4():
		return Config{}, fmt.Errorf("making the config of %s: %w: the grant has no IPv4 address", g.Name, ErrInvalid)
	case g.IPv6.IsValid() && !g.IPv6.Is6():
		return Config{}, fmt.Errorf("making the config of %s: %w: the grant's IPv6 address %s is not one", g.Name, ErrInvalid, g.IPv6)
	}
	endpoint, err := grantEndpoint(g.Endpoint, endpointOverride)
	if err != nil {
		return Config{}, fmt.Errorf("making the config of %s: %w", g.Name, err)
	}
	c := Config{
		PrivateKey:          privateKey,
		Addresses:           []netip.Prefix{netip.PrefixFrom(g.IPv4, 32)},
		MTU:                 g.MTU,
		PeerPublicKey:       g.NodePublicKey,
		Endpoint:            endpoint,
		PersistentKeepalive: DefaultKeepalive,
	}
	if g.IPv6.IsValid() {
		c.Addresses = append(c.Addresses, netip.PrefixFrom(g.IPv6, 128))
	}
	if g.DNS.IsValid() {
		c.DNS = append(c.DNS, g.DNS.String())
	}
	if g.Network != "" {
		c.DNS = append(c.DNS, g.Network+".internal")
	}
	for _, r := range []netip.Prefix{g.IPRange, g.IPv6Range} {
		if r.IsValid() {
			c.AllowedIPs = append(c.AllowedIPs, r.Masked())
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("making the config of %s: %w", g.Name, err)
	}
	return c, nil
}

// CheckEndpoint reports whether override is usable as FromGrant's
// endpointOverride, before a grant exists: "HOST", "HOST:PORT",
// "[IPv6]:PORT" or a bare IPv6 address. The error matches ErrInvalid.
func CheckEndpoint(override string) error {
	_, err := grantEndpoint("192.0.2.1:1", override)
	return err
}

// grantEndpoint applies override to the grant's endpoint.
func grantEndpoint(granted, override string) (string, error) {
	if override == "" {
		if granted == "" {
			return "", endpointError{errors.New("the grant has no endpoint (the node is hidden)")}
		}
		if _, _, err := spec.ParseEndpoint(granted); err != nil {
			return "", endpointError{fmt.Errorf("the grant's %w", err)}
		}
		return granted, nil
	}
	if _, _, err := spec.ParseEndpoint(override); err == nil {
		return override, nil
	}
	host := override
	if inner, ok := strings.CutPrefix(host, "["); ok && strings.HasSuffix(inner, "]") {
		host = strings.TrimSuffix(inner, "]")
	}
	if addr, err := netip.ParseAddr(host); err == nil && addr.Is6() {
		host = "[" + host + "]"
	} else if host != override {
		return "", endpointError{fmt.Errorf("endpoint %q: only an IPv6 address goes in brackets", override)}
	} else if strings.ContainsAny(host, ":[]") {
		_, _, err := spec.ParseEndpoint(override)
		return "", endpointError{err}
	}
	if _, _, err := spec.ParseEndpoint(host + ":1"); err != nil {
		reason := err
		if inner := errors.Unwrap(err); inner != nil {
			reason = inner // without the made-up port
		}
		return "", endpointError{fmt.Errorf("endpoint %q: %w", override, reason)}
	}
	if granted == "" {
		return "", endpointError{errors.New("the grant has no endpoint to take the port from: give HOST:PORT")}
	}
	_, port, err := spec.ParseEndpoint(granted)
	if err != nil {
		return "", endpointError{fmt.Errorf("the grant's %w", err)}
	}
	return host + ":" + strconv.Itoa(int(port)), nil
}

// endpointError is an error about an endpoint that matches ErrInvalid
// without the words of ErrInvalid, which speak of a config.
type endpointError struct{ reason error }

func (e endpointError) Error() string   { return e.reason.Error() }
func (e endpointError) Unwrap() []error { return []error{ErrInvalid, e.reason} }
