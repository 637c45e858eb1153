package daemon

import (
	"net/netip"
	"os"
	"slices"
	"sync"

	"github.com/znet/znet/firewall"
	"github.com/znet/znet/netconf"
)

// realized remembers, per network, the routes and the firewall that
// realize last put into the kernel (and whether it set the namespace's
// sysctls), so that an apply that changes neither
// (a member's subnet aside) does not rebuild them: with a thousand members
// a route dump and a firewall rebuild cost more than the rest of an apply.
//
// A record is trusted only for the namespace it was made in (its netns
// cookie, which the kernel never reuses). The routes also need the same
// WireGuard link, found up before realize set it up (a link that went down
// lost its routes); the firewall needs the namespace's nftables generation
// to be where the last rebuild left it, so any other change of the ruleset
// (an operator's nft; a workload's attach goes through the record) forces a
// rebuild. Anything else falls back to the full sync, which is what a
// record's absence means.
//
// What the records cannot see: a sysctl or the loopback changed by hand,
// routes deleted by hand, or lost to a link
// taken down and up again by hand between two applies, and an nft change
// made in the instant between a rebuild and the read of its generation.
// An apply that changes nothing forgets the records (Apply), so re-applying
// the same spec repairs all of these. A restart of znetd repairs the routes
// and the device, but no longer the firewall when nothing changed it: its
// record is also kept on disk, under the same conditions plus the boot
// (fwrecord.go), so adopting a thousand networks does not rebuild a
// thousand rulesets.
type realized struct {
	mu   sync.Mutex
	nets map[string]*realizedNet // network name -> what is in the kernel
	// unsure names the networks whose data plane may differ from its
	// record's device in a way the record cannot show: a keepalive raise
	// (stagger.go) failed. Kept apart from nets, whose records realize
	// takes and puts back while it runs: a raise that fails meanwhile
	// must still reach the next realize.
	unsure map[string]bool
}

type realizedNet struct {
	cookie uint64
	// link is the WireGuard link's index and routes the prefixes routed
	// through it (sorted, canonical); routes is nil when unknown.
	link   int
	routes []netip.Prefix
	// rules is the firewall installed and the nftables generation after;
	// nil when unknown.
	rules *firewall.Installed
	// device is what the userspace data plane was last configured with;
	// nil when unknown.
	device *configuredDev
	// prepared: the namespace's loopback and sysctls were set
	// (prepareOf), with br_netfilter's there or not (hooks).
	prepared, hooks bool
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
	delete(r.unsure, network)
}

// doubtDevice makes the next realize of network read its device instead
// of trusting the record of what it was configured with.
func (r *realized) doubtDevice(network string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unsure == nil {
		r.unsure = map[string]bool{}
	}
	r.unsure[network] = true
}

// takeDoubt reports whether the device of network was doubted since the
// last call, and clears the doubt: the caller reads the device.
func (r *realized) takeDoubt(network string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	doubted := r.unsure[network]
	delete(r.unsure, network)
	return doubted
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

// prepareOf sets up the namespace of network as ns.Prepare does (loopback
// up, networkSysctls), unless the record shows it was done in this
// namespace: nothing but an operator changes them afterwards, and writing
// a dozen sysctls on a thread moved into the namespace cost 0.4 ms per
// apply. A repair (Apply forgets the record) and a new namespace (another
// cookie) set them again, and so does br_netfilter loaded since (docker
// does): its sysctls appear in every namespace, switched on.
func (d *Daemon) prepareOf(ns netconf.Namespace, network string) error {
	cookie, err := ns.Cookie()
	if err != nil {
		return ns.Prepare(networkSysctls)
	}
	e := d.realized.take(network, cookie)
	hooks := bridgeHooksLoaded()
	if !e.prepared || e.hooks != hooks {
		e.prepared = false
		if err := ns.Prepare(networkSysctls); err != nil {
			d.realized.put(network, e)
			return err
		}
		e.prepared, e.hooks = true, hooks
	}
	d.realized.put(network, e)
	return nil
}

// syncRoutesOf makes the routes through link exactly want; when the
// record of network shows what the link has, only the difference is
// changed, without a dump. st is the link's state before realize set it up.
// The record keeps want: the caller must not change it afterwards (a
// copy of 2,000 routes cost 40 us per apply).
func (d *Daemon) syncRoutesOf(ns netconf.Namespace, network, link string, st netconf.LinkState, want []netip.Prefix) error {
	cookie, err := ns.Cookie()
	if err != nil {
		d.realized.take(network, 0) // forget: the sync changes what it says
		return ns.Routes(link, nil, want)
	}
	e := d.realized.take(network, cookie)
	var have []netip.Prefix
	if e.routes != nil && e.link == st.Index && st.WasUp {
		have = e.routes
	}
	if err := ns.Routes(link, have, want); err != nil {
		e.routes = nil
		d.realized.put(network, e)
		return err
	}
	e.link, e.routes = st.Index, slices.Clip(want)
	d.realized.put(network, e)
	return nil
}

// applyFirewallOf installs rules in ns, unless the record of network shows
// they are there already (firewall.Ensure).
func (d *Daemon) applyFirewallOf(ns netconf.Namespace, network string, rules firewall.Rules) error {
	cookie, err := ns.Cookie()
	if err != nil {
		d.realized.take(network, 0) // forget: the rebuild changes what it says
		d.dropFirewallRecord(d.nsName(network))
		return ns.Install(rules)
	}
	e := d.realized.take(network, cookie)
	last := e.rules
	e.rules, err = firewall.Ensure(ns, rules, last)
	d.realized.put(network, e)
	if e.rules != last || e.rules == nil {
		d.saveFirewall(network, cookie, e.rules) // installed, or unknown now
	}
	return err
}

// bridgeHooksLoaded reports whether br_netfilter's sysctls exist (the
// module is loaded, or built in): in this thread's namespace as in every
// other.
func bridgeHooksLoaded() bool {
	_, err := os.Stat("/proc/sys/" + bridgeSysctls[0])
	return err == nil
}
