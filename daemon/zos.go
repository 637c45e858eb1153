package daemon

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/znet/znet/api"
	"github.com/znet/znet/store"
	"github.com/znet/znet/zos"
)

var _ api.ZosService = (*Daemon)(nil)

// ZosApply implements api.ZosService: it realizes a zos network workload
// as the znet network zos.NetworkName(twin, w.Name), with the key and port
// the workload carries. The workload's version is the spec's generation
// minus one, so an older version is refused and an equal one must be
// identical (then nothing changes).
func (d *Daemon) ZosApply(ctx context.Context, twin uint32, w *zos.Workload) (api.ZosNetwork, error) {
	if !d.importKeys {
		return api.ZosNetwork{}, api.Conflict("data.wireguard_private_key",
			"this node does not accept private keys made elsewhere; start znetd with --allow-imported-keys")
	}
	plan, err := zos.Translate(twin, w, d.nodeID)
	if err != nil {
		return api.ZosNetwork{}, err
	}
	s := plan.Spec
	origin := &store.ZosOrigin{Twin: twin, Name: w.Name, Version: w.Version}
	var res api.ApplyResult
	err = d.locked(ctx, func(ctx context.Context) error {
		old, wls, err := d.loadNetwork(s.Name)
		switch {
		case errors.Is(err, api.ErrNotFound):
			old = &store.Network{Name: s.Name}
		case err != nil:
			return err
		}
		if err := d.checkZos(old, origin, plan); err != nil {
			return err
		}
		n := *old
		n.PrivateKey, n.PublicKey, n.ListenPort = plan.PrivateKey.String(), plan.PrivateKey.PublicKey().String(), plan.ListenPort
		n.Zos = origin
		res, err = d.applyLocked(ctx, old, &n, s, wls)
		return err
	})
	if err != nil {
		return api.ZosNetwork{}, err
	}
	if res.Changed {
		d.log.Info("zos workload applied", "network", s.Name, "twin", twin, "workload", w.Name, "version", w.Version)
	}
	return api.ZosNetwork{Network: s.Name, Twin: twin, Name: w.Name, Version: w.Version}, nil
}

// checkZos decides whether plan, for the workload origin, may replace what
// network old has: old must realize the same workload (or nothing yet),
// the version must not go back, an equal version must bring the same
// network, key and port, and the port must be this node's to take.
func (d *Daemon) checkZos(old *store.Network, origin *store.ZosOrigin, plan *zos.Plan) error {
	had := old.Zos
	switch {
	case old.Spec == nil && had == nil && old.PrivateKey != "":
		return api.Conflict("name", "network %s is reserved on this node for a spec; it cannot realize a zos workload", old.Name)
	case old.Spec != nil && had == nil:
		return api.Conflict("name", "network %s was applied from a spec; it cannot realize a zos workload", old.Name)
	case had != nil && (had.Twin != origin.Twin || had.Name != origin.Name):
		return api.Conflict("name", "network %s realizes workload %q of twin %d", old.Name, had.Name, had.Twin)
	case had != nil && origin.Version < had.Version:
		return api.Conflict("version", "%d is older than the applied version %d", origin.Version, had.Version)
	case had != nil && origin.Version == had.Version:
		if !plan.Spec.Equal(old.Spec) || plan.PrivateKey.String() != old.PrivateKey || plan.ListenPort != old.ListenPort {
			return api.Conflict("version", "version %d is already applied with different content; bump the version", origin.Version)
		}
		return nil
	}
	return d.checkZosPort(old, plan.ListenPort)
}

// checkZosPort refuses a port another network of this node uses, or, when
// the port changes, one that is taken in the underlay.
func (d *Daemon) checkZosPort(old *store.Network, port int) error {
	var ports map[string]int
	err := d.store.View(func(tx *store.Tx) error {
		var err error
		ports, err = tx.ListenPorts()
		return err
	})
	if err != nil {
		return err
	}
	for other, p := range ports {
		if other != old.Name && p == port {
			return api.Conflict("data.wireguard_listen_port", "port %d is used by network %s on this node", port, other)
		}
	}
	if port != old.ListenPort && !d.free(port) {
		return api.Conflict("data.wireguard_listen_port", "UDP port %d is in use on this node", port)
	}
	return nil
}

// ZosNetworks implements api.ZosService.
func (d *Daemon) ZosNetworks(ctx context.Context) ([]api.ZosNetwork, error) {
	out := []api.ZosNetwork{}
	err := d.store.View(func(tx *store.Tx) error {
		all, err := tx.Networks()
		for _, n := range all {
			if n.Zos != nil {
				out = append(out, api.ZosNetwork{Network: n.Name, Twin: n.Zos.Twin, Name: n.Zos.Name, Version: n.Zos.Version})
			}
		}
		return err
	})
	slices.SortFunc(out, func(a, b api.ZosNetwork) int {
		return cmp.Or(cmp.Compare(a.Twin, b.Twin), cmp.Compare(a.Name, b.Name))
	})
	return out, err
}

// ZosDelete implements api.ZosService. The workloads attached to the
// network lose it, as they do when zos deletes a network.
func (d *Daemon) ZosDelete(ctx context.Context, twin uint32, name string) error {
	network := zos.NetworkName(twin, name)
	return d.locked(ctx, func(ctx context.Context) error {
		n, wls, err := d.loadNetwork(network)
		if errors.Is(err, api.ErrNotFound) || (err == nil && (n.Zos == nil || n.Zos.Twin != twin || n.Zos.Name != name)) {
			return api.NotFound("name", "no zos workload %q of twin %d on node %s", name, twin, d.nodeID)
		}
		if err != nil {
			return err
		}
		return d.deleteLocked(ctx, network, wls)
	})
}
