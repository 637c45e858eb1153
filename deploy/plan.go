package deploy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/znet/znet/api"
	"github.com/znet/znet/ipam"
	"github.com/znet/znet/spec"
)

// newestSpec returns the spec with the highest generation among specs
// (nil entries skipped; nil when there is none). Of equal generations the
// first wins.
func newestSpec(specs []*spec.Spec) *spec.Spec {
	var newest *spec.Spec
	for _, s := range specs {
		if s != nil && (newest == nil || s.Generation > newest.Generation) {
			newest = s
		}
	}
	return newest
}

// buildSpec returns generation gen of d's network. ready holds the
// reservation of every node of d that answered; newest is the newest spec
// any node has applied (nil for a new network).
//
// A ready node keeps the subnet it has in newest, or gets the lowest free
// one of d's subnet size, in the order of the file. A node that did not
// answer keeps its entry of newest unchanged (its peers keep it), or is left
// out when it was not a member. Members of newest that are not in d are left
// out, but their subnets stay taken in this generation, so no peer is given
// a subnet another peer still holds; they are free for the next one. The
// spec's members are sorted by id, and the spec is validated.
func buildSpec(d *Deployment, gen uint64, newest *spec.Spec, ready map[string]api.Reservation) (*spec.Spec, error) {
	if newest != nil && newest.IPRange != d.IPRange {
		return nil, fieldErr("ip_range", "the network %s has range %s; a range cannot be changed (delete the network and deploy it again)", d.Name, newest.IPRange)
	}
	s := &spec.Spec{Name: d.Name, Generation: gen, IPRange: d.IPRange, IPv6Range: d.IPv6Range, MTU: d.MTU, Egress: d.Egress}
	s.SetDefaults()
	var taken []netip.Prefix
	old := map[string]spec.Node{}
	if newest != nil {
		for _, n := range newest.Nodes {
			old[n.ID] = n
			if n.Subnet.IsValid() && n.Subnet.Addr().Is4() {
				taken = append(taken, n.Subnet)
			}
		}
	}
	for _, ref := range d.Nodes {
		prev, member := old[ref.ID]
		res, ok := ready[ref.ID]
		switch {
		case !ok && member:
			s.Nodes = append(s.Nodes, prev)
		case !ok:
		case member:
			s.Nodes = append(s.Nodes, spec.Node{ID: ref.ID, Subnet: prev.Subnet, PublicKey: res.PublicKey, Endpoint: ref.Endpoint(res.ListenPort)})
		default:
			sub, err := ipam.PlanSubnet(d.IPRange, d.subnetBits(), taken)
			if err != nil {
				return nil, fmt.Errorf("planning a subnet for node %s: %w", ref.ID, err)
			}
			taken = append(taken, sub)
			s.Nodes = append(s.Nodes, spec.Node{ID: ref.ID, Subnet: sub, PublicKey: res.PublicKey, Endpoint: ref.Endpoint(res.ListenPort)})
		}
	}
	slices.SortFunc(s.Nodes, func(a, b spec.Node) int { return cmp.Compare(a.ID, b.ID) })
	if err := s.Validate(""); err != nil {
		return nil, fmt.Errorf("generation %d of %s: %w", gen, d.Name, err)
	}
	return s, nil
}
