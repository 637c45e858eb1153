package peers

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// NetResolver returns a Resolver that looks host names up with r (nil for
// net.DefaultResolver) and takes the first address, which the resolver has
// already ordered by preference.
func NetResolver(r *net.Resolver) Resolver {
	if r == nil {
		r = net.DefaultResolver
	}
	return func(ctx context.Context, host string) (netip.Addr, error) {
		addrs, err := r.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("looking up %s: %w", host, err)
		}
		if len(addrs) == 0 {
			return netip.Addr{}, fmt.Errorf("looking up %s: no addresses", host)
		}
		return addrs[0].Unmap(), nil
	}
}
