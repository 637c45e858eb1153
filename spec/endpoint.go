package spec

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ParseEndpoint splits a WireGuard endpoint "host:port" where host is an IPv4
// literal, a bracketed IPv6 literal ("[fd00::1]:51820") or a DNS host name,
// and port is 1..65535. The host is returned without brackets.
func ParseEndpoint(s string) (host string, port uint16, err error) {
	host, port, err = parseEndpoint(s)
	if err != nil {
		return "", 0, fmt.Errorf("endpoint %q: %w", s, err)
	}
	return host, port, nil
}

// parseEndpoint is ParseEndpoint with errors that do not repeat the input.
func parseEndpoint(s string) (host string, port uint16, err error) {
	var portText string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, errors.New("missing ']'")
		}
		host, portText = s[1:end], s[end+1:]
		if !strings.HasPrefix(portText, ":") {
			return "", 0, errors.New("missing port (want [ipv6]:port)")
		}
		portText = portText[1:]
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() {
			return "", 0, fmt.Errorf("%q in brackets is not an IPv6 address", host)
		}
		if addr.Zone() != "" {
			return "", 0, errors.New("an IPv6 zone is local to one machine")
		}
	} else {
		colon := strings.LastIndexByte(s, ':')
		if colon < 0 {
			return "", 0, errors.New("missing port (want host:port)")
		}
		host, portText = s[:colon], s[colon+1:]
		if strings.Contains(host, ":") {
			if _, err := netip.ParseAddr(s); err == nil {
				return "", 0, errors.New("an IPv6 address needs brackets and a port ([addr]:port)")
			}
			if _, err := netip.ParseAddr(host); err == nil {
				return "", 0, errors.New("an IPv6 address needs brackets ([addr]:port)")
			}
			return "", 0, fmt.Errorf("host %q is neither an IP address nor a host name", host)
		}
		if err := checkHost(host); err != nil {
			return "", 0, err
		}
	}
	p, err := parsePort(portText)
	if err != nil {
		return "", 0, err
	}
	return host, p, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, errors.New("missing port")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %q is not a number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %s is out of range (1..65535)", s)
	}
	return uint16(n), nil
}

// checkHost accepts an IPv4 literal or a DNS host name (RFC 1123 labels; the
// last label not all digits, so "1.2.3" and "300.1.1.1" are bad addresses,
// not names).
func checkHost(host string) error {
	if host == "" {
		return errors.New("missing host")
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil // no colon, so IPv4
	}
	if len(host) > 253 {
		return fmt.Errorf("host name is %d characters long (max 253)", len(host))
	}
	labels := strings.Split(host, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("host name %q has an empty or over-long label", host)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("host name %q has a label starting or ending with '-'", host)
		}
		for _, c := range l {
			if !isAlnum(c) && c != '-' {
				return fmt.Errorf("host %q is neither an IPv4 address nor a host name (bad character %q)", host, c)
			}
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return fmt.Errorf("host %q is not a valid IPv4 address", host)
	}
	return nil
}

func isAlnum(c rune) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
