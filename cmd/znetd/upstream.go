package main

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// dnsUpstreams parses --dns-upstream: comma-separated addresses, each with
// an optional port (53 by default). Empty means the nameservers of the
// resolv.conf file at path; a node without one has no upstreams, and its
// egress networks' outside names are refused.
func dnsUpstreams(flag, path string) ([]netip.AddrPort, error) {
	var items []string
	if flag != "" {
		items = strings.Split(flag, ",")
	} else {
		cfg, err := dns.ClientConfigFromFile(path)
		if err != nil {
			if os.IsNotExist(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("--dns-upstream: reading %s: %w", path, err)
		}
		items = cfg.Servers
	}
	var out []netip.AddrPort
	for _, it := range items {
		u, err := parseUpstream(strings.TrimSpace(it))
		if err != nil {
			return nil, fmt.Errorf("--dns-upstream: %q: %w", it, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// parseUpstream reads ADDR, ADDR:PORT or [V6ADDR]:PORT.
func parseUpstream(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap().WithZone(""), 53), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("want an address, optionally with :port")
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("port 0")
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
