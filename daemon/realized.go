package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/mdlayher/netlink"
	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/firewall"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/peers"
)

// realized remembers, per network, the routes and the firewall that
// realize last put into the kernel, so that an apply that changes neither
// (a member's subnet aside) does not rebuild them: with a thousand members
// a route dump and a firewall rebuild cost more than the rest of an apply.
//
// A record is trusted only for the namespace it was made in (its netns
// cookie, which the kernel never reuses). The routes also need the same
// WireGuard link, found up before realize set it up (a link that went down
// lost its routes); the firewall needs the namespace's nftables generation
// to be where the last rebuild left it, so any other change of the ruleset
// (a workload's attach, an operator's nft) forces a rebuild. Anything else
// falls back to the full sync, which is what a record's absence means.
//
// What the records cannot see: routes deleted by hand, or lost to a link
// taken down and up again by hand between two applies, and an nft change
// made in the instant between a rebuild and the read of its generation.
// An apply that changes nothing forgets the records (Apply), so re-applying
// the same spec repairs all of these, as does a restart of znetd.
type realized struct {
	mu   sync.Mutex
	nets map[string]*realizedNet // network name -> what is in the kernel
}

type realizedNet struct {
	cookie uint64
	// link is the WireGuard link's index and routes the prefixes routed
	// through it (sorted, canonical); routes is nil when unknown.
	link   int
	routes []netip.Prefix
	// rules is the firewall installed when the nftables generation was
	// gen; nil when unknown.
	rules *firewall.Rules
	gen   uint32
	// device is what the userspace data plane pid was last configured
	// with (key, port, peers as desired); nil when unknown.
	device *wgtypes.Device
	pid    int
}

// take removes and returns network's record, so that a sync that fails
// half way leaves none behind.
func (r *realized) take(network string, cookie uint64) *realizedNet {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.nets[network]
	delete(r.nets, network)
	if e == nil || e.cookie != cookie {
		return &realizedNet{cookie: cookie}
	}
	return e
}

// forget drops network's record: the next realize syncs everything from
// the kernel's actual state. An apply that changes nothing does so, because
// re-applying is how an operator repairs what was changed by hand; so does
// deleting the network.
func (r *realized) forget(network string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.nets, network)
}

// put records e for network.
func (r *realized) put(network string, e *realizedNet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nets == nil {
		r.nets = map[string]*realizedNet{}
	}
	r.nets[network] = e
}

// syncRoutesOf makes the routes through wg exactly want, as syncRoutes
// does; when the record of network shows what the link has, only the
// difference is changed, without a dump. wasUp tells whether wg was up
// before realize set it up.
func (d *Daemon) syncRoutesOf(ns netns.NsHandle, network string, h *vnl.Handle, wg vnl.Link, wasUp bool, want []netip.Prefix) error {
	cookie, err := namespaces.Cookie(ns)
	if err != nil {
		d.realized.take(network, 0) // forget: the sync changes what it says
		return syncRoutes(h, wg, want)
	}
	e := d.realized.take(network, cookie)
	idx := wg.Attrs().Index
	if e.routes != nil && e.link == idx && wasUp {
		err = changeRoutes(h, idx, e.routes, want)
	} else {
		err = syncRoutes(h, wg, want)
	}
	if err != nil {
		e.routes = nil
		d.realized.put(network, e)
		return err
	}
	e.link, e.routes = idx, slices.Clip(slices.Clone(want))
	d.realized.put(network, e)
	return nil
}

// changeRoutes turns the routes through link idx from have into want,
// both sorted sets as peers.Routes returns them.
func changeRoutes(h *vnl.Handle, idx int, have, want []netip.Prefix) error {
	add, del := peers.RouteDiff(have, want)
	for _, p := range del {
		// The scope must be the route's own: IPv4 matches it on delete.
		r := &vnl.Route{LinkIndex: idx, Dst: ipNet(p), Scope: vnl.SCOPE_LINK, Table: unix.RT_TABLE_MAIN}
		if err := h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("removing route %s: %w", p, err)
		}
	}
	for _, p := range add {
		if err := addRoute(h, idx, p); err != nil {
			return err
		}
	}
	return nil
}

// applyFirewallOf installs rules in ns as firewall.Apply does, unless the
// record of network shows they are there already.
func (d *Daemon) applyFirewallOf(ns netns.NsHandle, network string, rules firewall.Rules) error {
	cookie, err := namespaces.Cookie(ns)
	if err != nil {
		d.realized.take(network, 0) // forget: the rebuild changes what it says
		return firewall.Apply(ns, rules)
	}
	e := d.realized.take(network, cookie)
	if e.rules != nil && sameRules(*e.rules, rules) {
		if gen, err := nftGeneration(ns); err == nil && gen == e.gen {
			d.realized.put(network, e)
			return nil
		}
	}
	e.rules = nil
	if err := firewall.Apply(ns, rules); err != nil {
		d.realized.put(network, e)
		return err
	}
	if gen, err := nftGeneration(ns); err == nil {
		e.rules, e.gen = &rules, gen
	}
	d.realized.put(network, e)
	return nil
}

func sameRules(a, b firewall.Rules) bool {
	return a.Bridge == b.Bridge && a.Overlay == b.Overlay && slices.Equal(a.Ports, b.Ports) &&
		slices.Equal(a.AccessPeers, b.AccessPeers) && sameEgress(a.Egress, b.Egress)
}

// nftGeneration returns the nftables ruleset generation of ns, which the
// kernel bumps at every committed change of any table there.
func nftGeneration(ns netns.NsHandle) (uint32, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(ns)})
	if err != nil {
		return 0, fmt.Errorf("nftables in namespace: %w", err)
	}
	defer func() { _ = c.Close() }()
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
			Flags: netlink.Request,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0}, // nfgenmsg
	}
	msgs, err := c.Execute(req)
	if err != nil {
		return 0, fmt.Errorf("reading the nftables generation: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, fmt.Errorf("reading the nftables generation: %w", err)
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32(), ad.Err()
			}
		}
	}
	return 0, errors.New("reading the nftables generation: no NFTA_GEN_ID in the answer")
}

// linkUp reports whether link was administratively up when it was read.
func linkUp(link vnl.Link) bool { return link.Attrs().Flags&net.FlagUp != 0 }
