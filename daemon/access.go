package daemon

import (
	"context"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/api"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
)

// access returns a network's access peers.
func (d *Daemon) access(network string) ([]*store.AccessPeer, error) {
	var acc []*store.AccessPeer
	err := d.store.View(func(tx *store.Tx) error {
		var err error
		acc, err = tx.AccessPeers(network)
		return err
	})
	return acc, err
}

// AddAccess implements api.Service. The device gets a peer whose AllowedIPs
// are exactly the two addresses given to it, from this node's subnet (so
// every other member routes them here already).
func (d *Daemon) AddAccess(ctx context.Context, network string, req api.AccessRequest) (api.AccessGrant, error) {
	if err := api.CheckName("name", req.Name); err != nil {
		return api.AccessGrant{}, err
	}
	if err := spec.CheckKey(req.PublicKey); err != nil {
		return api.AccessGrant{}, api.Invalid("public_key", "%v", err)
	}
	key, err := wgtypes.ParseKey(req.PublicKey)
	if err != nil {
		return api.AccessGrant{}, err // CheckKey took it: not reached
	}
	var grant api.AccessGrant
	err = d.withNetwork(ctx, network, func(ctx context.Context, n *store.Network, wls []*store.Workload) error {
		var err error
		grant, err = d.addAccessLocked(ctx, n, wls, req.Name, key)
		return err
	})
	return grant, err
}

// addAccessLocked is AddAccess for network n with workloads wls.
func (d *Daemon) addAccessLocked(ctx context.Context, n *store.Network, wls []*store.Workload, name string, key wgtypes.Key) (api.AccessGrant, error) {
	network := n.Name
	if n.Spec == nil {
		return api.AccessGrant{}, api.Conflict("network", "network %s is reserved but not applied yet", network)
	}
	self, _ := n.Spec.Node(d.nodeID)
	if self.Endpoint == "" {
		return api.AccessGrant{}, api.Conflict("network", "node %s is hidden in %s (no endpoint): add access on a member with a public endpoint", d.nodeID, network)
	}
	acc, err := d.access(network)
	if err != nil {
		return api.AccessGrant{}, err
	}
	if err := checkNewAccess(n.Spec, acc, name, key); err != nil {
		return api.AccessGrant{}, err
	}
	subnets, err := d.subnetsOf(n.Spec)
	if err != nil {
		return api.AccessGrant{}, err
	}
	addr, err := n.Addrs.Allocate("access/" + name)
	if err != nil {
		return api.AccessGrant{}, api.Conflict("name", "no free address in %s: %v", subnets.V4, err)
	}
	a := &store.AccessPeer{Network: network, Name: name, PublicKey: key.String(), IPv4: addr, IPv6: subnets.Twin(addr)}
	next := append(append([]*store.AccessPeer{}, acc...), a)
	err = d.commit(ctx, change{
		doing:  "adding access " + name,
		kernel: func() error { return d.realize(ctx, n, n.Spec, wls, next) },
		saving: "saving access " + name,
		save: func(tx *store.Tx) error {
			if err := tx.PutAccess(a); err != nil {
				return err
			}
			return tx.PutNetwork(n)
		},
		undo: func(ctx context.Context) { d.rollbackAccess(ctx, n, wls, acc) },
	})
	if err != nil {
		return api.AccessGrant{}, err
	}
	d.log.Info("access added", "network", network, "peer", name, "ipv4", addr)
	// The network's MTU on this node, which the device may have derived;
	// unknown, the config leaves it to wg-quick (MTU 0 writes no line).
	mtu, err := d.linkMTU(network)
	if err != nil {
		mtu = n.Spec.MTU
	}
	return api.AccessGrant{
		AccessPeer:    accessView(a),
		Network:       network,
		NodePublicKey: n.PublicKey,
		Endpoint:      self.Endpoint,
		IPRange:       n.Spec.IPRange,
		IPv6Range:     n.Spec.IPv6Range,
		DNS:           subnets.Gateway4,
		MTU:           mtu,
	}, nil
}

// checkNewAccess refuses a name or key that is in use already.
func checkNewAccess(s *spec.Spec, acc []*store.AccessPeer, name string, key wgtypes.Key) error {
	for _, a := range acc {
		if a.Name == name {
			return api.Conflict("name", "access peer %s exists already (%s)", name, a.IPv4)
		}
		if a.PublicKey == key.String() {
			return api.Conflict("public_key", "the key is already used by access peer %s", a.Name)
		}
	}
	for _, node := range s.Nodes {
		if node.PublicKey == key.String() {
			return api.Conflict("public_key", "the key is member %s's", node.ID)
		}
	}
	return nil
}

func (d *Daemon) rollbackAccess(ctx context.Context, n *store.Network, wls []*store.Workload, acc []*store.AccessPeer) {
	if err := d.realize(context.WithoutCancel(ctx), n, n.Spec, wls, acc); err != nil {
		d.log.Error("rollback incomplete; re-apply to repair", "network", n.Name, "err", err)
	}
}

// RemoveAccess implements api.Service. Removing the peer from the device
// ends its session at once: the device drops every packet of a key it does
// not know.
func (d *Daemon) RemoveAccess(ctx context.Context, network, name string) error {
	if err := api.CheckName("peer", name); err != nil {
		return err
	}
	return d.withNetwork(ctx, network, func(ctx context.Context, n *store.Network, wls []*store.Workload) error {
		return d.removeAccessLocked(ctx, n, wls, name)
	})
}

// removeAccessLocked is RemoveAccess for network n with workloads wls.
func (d *Daemon) removeAccessLocked(ctx context.Context, n *store.Network, wls []*store.Workload, name string) error {
	network := n.Name
	acc, err := d.access(network)
	if err != nil {
		return err
	}
	var (
		gone *store.AccessPeer
		rest []*store.AccessPeer
	)
	for _, a := range acc {
		if a.Name == name {
			gone = a
		} else {
			rest = append(rest, a)
		}
	}
	if gone == nil {
		return api.NotFound("peer", "no access peer %s in %s", name, network)
	}
	err = d.commit(ctx, change{
		doing: "removing access " + name,
		kernel: func() error {
			if n.Spec == nil {
				return nil
			}
			return d.realize(ctx, n, n.Spec, wls, rest)
		},
		saving: "saving removal of " + name,
		save: func(tx *store.Tx) error {
			if n.Addrs != nil {
				n.Addrs.Release(gone.IPv4)
			}
			if err := tx.DeleteAccess(network, name); err != nil {
				return err
			}
			return tx.PutNetwork(n)
		},
		undo: func(ctx context.Context) {
			if n.Spec != nil {
				d.rollbackAccess(ctx, n, wls, acc)
			}
		},
	})
	if err != nil {
		return err
	}
	d.log.Info("access removed", "network", network, "peer", name)
	return nil
}

// AccessPeers implements api.Service.
func (d *Daemon) AccessPeers(ctx context.Context, network string) ([]api.AccessPeer, error) {
	if _, _, err := d.loadNetwork(network); err != nil {
		return nil, err
	}
	acc, err := d.access(network)
	if err != nil {
		return nil, err
	}
	out := []api.AccessPeer{}
	for _, a := range acc {
		out = append(out, accessView(a))
	}
	return out, nil
}

func accessView(a *store.AccessPeer) api.AccessPeer {
	return api.AccessPeer{Name: a.Name, PublicKey: a.PublicKey, IPv4: a.IPv4, IPv6: a.IPv6}
}
