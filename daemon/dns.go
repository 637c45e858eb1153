package daemon

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/znet/znet/api"
	"github.com/znet/znet/dnsresolver"
	"github.com/znet/znet/ipam"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
)

// dnsTimeout bounds one push to, or question for, a network's resolver.
const dnsTimeout = 5 * time.Second

// dnsConfig is what this node's resolver of s needs: its gateways, the
// other members' gateways (where their resolvers are, over the mesh) and
// subnets (the only addresses each may publish names for) and this node's
// workloads.
func (d *Daemon) dnsConfig(s *spec.Spec, wls []*store.Workload) (dnsresolver.Config, error) {
	self, err := d.subnetsOf(s)
	if err != nil {
		return dnsresolver.Config{}, err
	}
	cfg := dnsresolver.Config{
		Network:   s.Name,
		NodeID:    d.nodeID,
		Gateway4:  self.Gateway4,
		Gateway6:  self.Gateway6,
		IPRange:   s.IPRange,
		IPv6Range: s.IPv6Range,
	}
	if s.Egress {
		cfg.Upstreams = d.upstreams
	}
	cfg.Members = make([]dnsresolver.Member, 0, len(s.Nodes)) // grown one by one, a thousand members were copied ten times
	for _, node := range s.Nodes {
		if node.ID == d.nodeID || !node.Subnet.IsValid() {
			continue // a member without a subnet has no resolver we know of
		}
		sub, err := ipam.NodeSubnets(s.IPRange, s.IPv6Range, node.Subnet)
		if err != nil {
			return dnsresolver.Config{}, err
		}
		cfg.Members = append(cfg.Members, dnsresolver.Member{
			ID: node.ID, Gateway4: sub.Gateway4, Gateway6: sub.Gateway6,
			Subnet4: sub.V4, Subnet6: sub.V6,
		})
	}
	for _, w := range wls {
		cfg.Local = append(cfg.Local, dnsresolver.Record{Name: w.Name, IPv4: w.IPv4, IPv6: w.IPv6})
	}
	return cfg, nil
}

// pushDNS sends the resolver of network n its records. A failure does not
// fail the change that caused it (the network itself works); it is logged,
// and status shows the resolver's state.
func (d *Daemon) pushDNS(ctx context.Context, n *store.Network, s *spec.Spec, wls []*store.Workload) {
	d.pushDNSHolding(ctx, n, s, wls, nil)
}

// pushDNSHolding is pushDNS for an apply that adds the members hold: the
// resolver may hold back its first sync to those (dnsresolver.Config.Hold),
// and syncs every other member it starts at once.
func (d *Daemon) pushDNSHolding(ctx context.Context, n *store.Network, s *spec.Spec, wls []*store.Workload, hold []string) {
	if !d.hasResolver() {
		return
	}
	cfg, err := d.dnsConfig(s, wls)
	cfg.Hold = hold
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
		defer cancel()
		err = d.dns.Push(ctx, n.Name, cfg)
	}
	if err != nil {
		d.log.Warn("updating the resolver", "network", n.Name, "err", err)
	}
}

// forgetter is a dnsresolver.Client that remembers what it pushed to
// each network's resolver (dnsclient.Sockets).
type forgetter interface{ Forget(network string) }

// forgetDNS drops what the client remembers of network's resolver, which
// is gone: a network deleted leaves nothing behind.
func (d *Daemon) forgetDNS(network string) {
	if f, ok := d.dns.(forgetter); ok {
		f.Forget(network)
	}
}

// dnsStatus asks the resolver of n what it holds.
func (d *Daemon) dnsStatus(ctx context.Context, n *store.Network) (*api.DNSStatus, string) {
	if !d.hasResolver() {
		return nil, ""
	}
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	st, err := d.dns.Query(ctx, n.Name)
	if err != nil {
		return nil, fmt.Sprintf("resolver: %v", err)
	}
	out := &api.DNSStatus{Serial: st.Serial, Records: st.Records, Queries: st.Queries}
	for id, m := range st.Members {
		out.Members = append(out.Members, api.DNSMember{ID: id, Serial: m.Serial, Records: m.Records, LastSync: m.LastSync, Error: m.Err})
	}
	sortDNSMembers(out.Members)
	return out, ""
}

func sortDNSMembers(m []api.DNSMember) {
	sort.Slice(m, func(i, j int) bool { return m[i].ID < m[j].ID })
}
