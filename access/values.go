package access

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/znet/znet/spec"
)

// Limits of the numeric values.
const (
	minMTU     = 68   // the smallest MTU Linux takes for IPv4
	minMTUIPv6 = 1280 // Linux drops IPv6 addresses from a link below this
	maxUint16  = 65535
)

// checkEndpoint accepts host:port with an IPv4 address, a host name or a
// bracketed IPv6 address as host.
func checkEndpoint(s string) error {
	_, _, err := spec.ParseEndpoint(s) // its errors quote s
	return err
}

// parseAddress reads one Address item: a prefix, or an address that stands
// for a single-host prefix (as `ip address add` takes it).
func parseAddress(s string, earlier []netip.Prefix) (netip.Prefix, error) {
	p, err := parsePrefixOrAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p, checkAddress(p, earlier)
}

// checkAddress accepts an interface address that is not already in earlier.
func checkAddress(p netip.Prefix, earlier []netip.Prefix) error {
	a := p.Addr()
	switch {
	case !p.IsValid():
		return errors.New("invalid prefix")
	case a.IsUnspecified() || a.IsMulticast():
		return fmt.Errorf("%s is not a usable interface address", p)
	case a.Is4In6():
		return fmt.Errorf("%s is an IPv4-mapped IPv6 address; write the IPv4 address", p)
	}
	for _, e := range earlier {
		if e == p {
			return fmt.Errorf("%s is listed twice", p)
		}
	}
	return nil
}

// parseAllowedIP reads one AllowedIPs item: a prefix or an address (a
// single-host prefix). Host bits are cleared, as wg does.
func parseAllowedIP(s string) (netip.Prefix, error) {
	p, err := parsePrefixOrAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	p = p.Masked()
	return p, checkAllowedIP(p)
}

// checkAllowedIP accepts a masked prefix.
func checkAllowedIP(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return errors.New("invalid prefix")
	case p != p.Masked():
		return fmt.Errorf("%s has host bits set (want %s)", p, p.Masked())
	case p.Addr().Is4In6():
		return fmt.Errorf("%s is an IPv4-mapped IPv6 prefix; write the IPv4 prefix", p)
	}
	return nil
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP prefix", s)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or prefix", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkDNS accepts a resolver address or a search domain. wg-quick takes an
// entry of only digits and dots, or with a colon, for an address and
// anything else for a search domain; an address must be canonical here (so
// that it renders as it was read), a domain a host name without a trailing
// dot.
func checkDNS(s string) error {
	if s == "" {
		return errors.New("empty entry")
	}
	if strings.Trim(s, "0123456789.") == "" || strings.Contains(s, ":") {
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil || a.Zone() != "":
			return fmt.Errorf("%q is not an IP address (wg-quick takes it for one)", s)
		case a.String() != s:
			return fmt.Errorf("%q is not written canonically (want %s)", s, a)
		case a.Is4In6():
			return fmt.Errorf("%q is an IPv4-mapped IPv6 address; write the IPv4 address", s)
		}
		return nil
	}
	return checkDomain(s)
}

// checkDomain accepts a DNS name of RFC 1123 labels.
func checkDomain(s string) error {
	if len(s) > 253 {
		return fmt.Errorf("domain is %d characters long (max 253)", len(s))
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%q is not a domain name (empty, over-long or hyphen-edged label)", s)
		}
		for _, c := range l {
			if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
				return fmt.Errorf("%q is not a domain name (bad character %q)", s, c)
			}
		}
	}
	return nil
}

// parseMTU reads an MTU; addrs are the config's addresses so far.
func parseMTU(s string, addrs []netip.Prefix) (int, error) {
	n, err := parseUint16(s)
	if err != nil {
		return 0, err
	}
	return n, checkMTU(n, addrs)
}

// checkMTU accepts an MTU that Linux takes for a link with addrs.
func checkMTU(n int, addrs []netip.Prefix) error {
	if n < minMTU || n > maxUint16 {
		return fmt.Errorf("%d is out of range (%d..%d)", n, minMTU, maxUint16)
	}
	for _, p := range addrs {
		if p.Addr().Is6() && n < minMTUIPv6 {
			return fmt.Errorf("%d is below %d, the minimum for the IPv6 address %s", n, minMTUIPv6, p)
		}
	}
	return nil
}

// parseKeepalive reads a PersistentKeepalive: seconds or "off" (0), as wg
// takes it.
func parseKeepalive(s string) (int, error) {
	if strings.EqualFold(s, "off") {
		return 0, nil
	}
	return parseUint16(s)
}

func checkKeepalive(n int) error {
	if n < 0 || n > maxUint16 {
		return fmt.Errorf("%d is out of range (0..%d)", n, maxUint16)
	}
	return nil
}

// parseUint16 reads a decimal number 0..65535 without sign or leading zero.
func parseUint16(s string) (int, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > maxUint16 {
		return 0, fmt.Errorf("%s is out of range (0..%d)", s, maxUint16)
	}
	return n, nil
}

// splitList splits a comma-separated value; with spaces, whitespace
// separates items too (wg-quick splits Address and DNS on both, wg splits
// AllowedIPs on commas only). Empty items are refused.
func splitList(value string, spaces bool) ([]string, error) {
	var items []string
	for item := range strings.SplitSeq(value, ",") {
		item = trimSpace(item)
		if item == "" {
			return nil, errors.New("empty item in the list")
		}
		if !spaces {
			if strings.ContainsFunc(item, isSpace) {
				return nil, fmt.Errorf("%q: separate the items with commas", item)
			}
			items = append(items, item)
			continue
		}
		items = append(items, strings.FieldsFunc(item, isSpace)...)
	}
	return items, nil
}

func isSpace(r rune) bool { return strings.ContainsRune(" \t\r\n\v\f", r) }

// trimSpace trims the ASCII white space that wg-quick trims ([[:space:]] in
// the C locale), not Unicode's.
func trimSpace(s string) string { return strings.Trim(s, " \t\r\n\v\f") }
