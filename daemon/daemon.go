package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/api"
	"github.com/znet/znet/dnsresolver"
	"github.com/znet/znet/ipam"
	"github.com/znet/znet/netconf"
	"github.com/znet/znet/overlay"
	"github.com/znet/znet/peers"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
)

// Default range of UDP ports that networks' WireGuard sockets get: 2,000,
// so that a node with 1,000 networks still has room beside other users of
// the range. znetd reserves it (ReservePortRange) so that no ephemeral
// socket takes one of them.
const (
	DefaultPortMin = 51820
	DefaultPortMax = 53819
)

// Config is what a Daemon needs.
type Config struct {
	NodeID  string
	Store   *store.Store
	Backend overlay.Backend
	// Host opens the networks' namespaces and the underlay; default:
	// netconf.Kernel with Underlay.
	Host   netconf.Host
	Logger *slog.Logger
	// PortMin and PortMax bound the UDP ports Reserve hands out.
	PortMin, PortMax int
	// Resolve turns endpoint host names into addresses; default: the
	// system resolver.
	Resolve peers.Resolver
	// PortFree reports whether a UDP port is free in the underlay; default:
	// try to bind it.
	PortFree func(port int) bool
	// Underlay is the namespace whose routes an overlay MTU is derived
	// from (where the WireGuard sockets are); default: the daemon's own.
	// The caller keeps it open while the daemon runs.
	Underlay netns.NsHandle
	// AllowImportedKeys lets zos workloads bring this node's private key
	// (znetd --allow-imported-keys); without it they are refused.
	AllowImportedKeys bool
	// MarkDir is where the daemon marks the namespaces it makes
	// (<state-dir>/netns), so that its orphan sweep removes only those;
	// "" marks nothing and sweeps every namespace of the node id.
	MarkDir string
	// ObserveApply, if set, is told how long each Apply took (for
	// znet_apply_duration_seconds).
	ObserveApply func(took time.Duration)
	// DNSUpstreams are the node's resolvers, which networks with egress
	// have names outside their zone resolved by.
	DNSUpstreams []netip.AddrPort
	// DNS configures and reads the networks' resolvers (dnsclient.Sockets
	// at dataplane.ResolverSocket); nil: the daemon pushes no records.
	DNS dnsresolver.Client
	// Resolvers runs a resolver-only process per network when the backend
	// runs no data plane to host it (kernel); nil: such networks have no
	// resolver.
	Resolvers ResolverHost
}

// Daemon is one node's agent. It implements api.Service.
type Daemon struct {
	nodeID  string
	store   *store.Store
	backend overlay.Backend
	host    netconf.Host
	log     *slog.Logger
	resolve peers.Resolver
	portMin int
	portMax int
	free    func(int) bool
	// underlay is Config.Underlay (0: the daemon's own namespace).
	underlay netns.NsHandle
	// importKeys is Config.AllowImportedKeys.
	importKeys bool
	// markDir is Config.MarkDir (see owner.go).
	markDir string
	// bootID is the running kernel's boot id, which firewall records on
	// disk are trusted for (fwrecord.go), program the znetd binary's
	// stamp; "" keeps none.
	bootID, program string
	// observeApply is Config.ObserveApply, never nil.
	observeApply func(time.Duration)
	// upstreams are the resolvers egress networks' names go to.
	upstreams []netip.AddrPort
	// etcNetns is where workloads' resolv.conf files go: /etc/netns (a
	// temporary directory in tests over fakes).
	etcNetns string

	// mu serialises every change to the state and the kernel objects, so
	// each mutation sees the result of the one before.
	mu sync.Mutex

	// realized is what realize last put into the kernel, per network.
	realized realized

	// later holds the pending keepalive raises of staggered peers.
	later staggered

	// sup watches the data planes and restarts those that die.
	sup *supervisor

	// dns is Config.DNS, resolvers Config.Resolvers; resolverSup watches
	// the resolver-only processes.
	dns         dnsresolver.Client
	resolvers   ResolverHost
	resolverSup *supervisor
}

var _ api.Service = (*Daemon)(nil)

// New returns a Daemon for cfg. It records the node id in the state at
// first start and refuses a state dir that belongs to another node.
func New(cfg Config) (*Daemon, error) {
	if err := spec.ValidName(cfg.NodeID); err != nil {
		return nil, fmt.Errorf("node id %q: %w", cfg.NodeID, err)
	}
	d := &Daemon{
		nodeID:  cfg.NodeID,
		store:   cfg.Store,
		backend: cfg.Backend,
		host:    cfg.Host,
		log:     cfg.Logger,
		resolve: cfg.Resolve,
		portMin: cfg.PortMin,
		portMax: cfg.PortMax,
		free:    cfg.PortFree,

		underlay:     cfg.Underlay,
		importKeys:   cfg.AllowImportedKeys,
		markDir:      cfg.MarkDir,
		bootID:       readBootID(),
		program:      programStamp(),
		observeApply: cfg.ObserveApply,
		upstreams:    cfg.DNSUpstreams,
		dns:          cfg.DNS,
		resolvers:    cfg.Resolvers,
		etcNetns:     "/etc/netns",
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.host == nil {
		d.host = netconf.Kernel{UnderlayNS: cfg.Underlay}
	}
	if d.resolve == nil {
		d.resolve = systemResolve
	}
	if d.portMin == 0 {
		d.portMin, d.portMax = DefaultPortMin, DefaultPortMax
	}
	if d.free == nil {
		d.free = udpPortFree
	}
	d.sup = newSupervisor(d.log)
	d.sup.wait, d.sup.current, d.sup.restart = d.waitDataplane, d.currentDataplane, d.restartDataplane
	d.resolverSup = d.newResolverSupervisor()
	if d.observeApply == nil {
		d.observeApply = func(time.Duration) {}
	}
	err := d.store.Update(func(tx *store.Tx) error {
		switch have := tx.NodeID(); have {
		case "":
			return tx.SetNodeID(d.nodeID)
		case d.nodeID:
			return nil
		default:
			return fmt.Errorf("state belongs to node %q, not %q", have, d.nodeID)
		}
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// NodeID returns this node's id.
func (d *Daemon) NodeID() string { return d.nodeID }

func systemResolve(ctx context.Context, host string) (netip.Addr, error) {
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("no address for %s", host)
	}
	return addrs[0].Unmap(), nil
}

func udpPortFree(port int) bool {
	// The daemon runs in the underlay namespace, so this is where the
	// WireGuard sockets will be. "udp" on ":port" is dual-stack.
	c, err := net.ListenPacket("udp", fmt.Sprintf(":%d", port))
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// Reserve implements api.Service.
func (d *Daemon) Reserve(ctx context.Context, network string) (api.Reservation, error) {
	if err := api.CheckName("name", network); err != nil {
		return api.Reservation{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var res api.Reservation
	err := d.store.Update(func(tx *store.Tx) error {
		n, err := tx.Network(network)
		if err == nil {
			res = api.Reservation{NodeID: d.nodeID, PublicKey: n.PublicKey, ListenPort: n.ListenPort}
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		n, err = d.newReservationLocked(tx, network)
		if err != nil {
			return err
		}
		res = api.Reservation{NodeID: d.nodeID, PublicKey: n.PublicKey, ListenPort: n.ListenPort}
		return tx.PutNetwork(n)
	})
	if err != nil {
		return api.Reservation{}, err
	}
	d.log.Info("reserved", "network", network, "port", res.ListenPort)
	return res, nil
}

// ReservePort implements api.Service. Moving an applied network's port
// takes effect at the next apply, whose spec carries the new port (the
// node's own entry must match its reservation), so every member re-points
// its peer in the same generation.
func (d *Daemon) ReservePort(ctx context.Context, network string, port int) (api.Reservation, error) {
	if err := api.CheckName("name", network); err != nil {
		return api.Reservation{}, err
	}
	if err := spec.CheckListenPort("listen_port", port); err != nil {
		return api.Reservation{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var res api.Reservation
	err := d.store.Update(func(tx *store.Tx) error {
		ports, err := tx.ListenPorts()
		if err != nil {
			return err
		}
		for other, p := range ports {
			if other != network && p == port {
				return api.Conflict("listen_port", "port %d is used by network %s on this node", port, other)
			}
		}
		var n *store.Network
		if _, ok := ports[network]; ok {
			if n, err = tx.Network(network); err != nil {
				return err
			}
		}
		if n != nil && n.Zos != nil {
			return api.Conflict("listen_port", "network %s realizes a zos workload, whose wireguard_listen_port decides the port", network)
		}
		if n != nil && n.ListenPort == port {
			res = api.Reservation{NodeID: d.nodeID, PublicKey: n.PublicKey, ListenPort: port}
			return nil
		}
		if !d.free(port) {
			return api.Conflict("listen_port", "UDP port %d is in use on this node", port)
		}
		if n == nil {
			if n, err = d.newReservationLocked(tx, network); err != nil {
				return err
			}
		}
		n.ListenPort = port
		res = api.Reservation{NodeID: d.nodeID, PublicKey: n.PublicKey, ListenPort: port}
		return tx.PutNetwork(n)
	})
	if err != nil {
		return api.Reservation{}, err
	}
	d.log.Info("reserved", "network", network, "port", port)
	return res, nil
}

// newReservationLocked makes a key and picks the lowest port that no other
// network of this node uses and that is free in the underlay.
func (d *Daemon) newReservationLocked(tx *store.Tx, network string) (*store.Network, error) {
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	ports, err := tx.ListenPorts()
	if err != nil {
		return nil, err
	}
	used := map[int]bool{}
	for _, p := range ports {
		used[p] = true
	}
	for port := d.portMin; port <= d.portMax; port++ {
		if used[port] || !d.free(port) {
			continue
		}
		return &store.Network{
			Name:       network,
			PrivateKey: key.String(),
			PublicKey:  key.PublicKey().String(),
			ListenPort: port,
		}, nil
	}
	return nil, api.Conflict("listen_port", "no free UDP port in %d-%d", d.portMin, d.portMax)
}

// Networks implements api.Service.
func (d *Daemon) Networks(ctx context.Context) ([]api.NetworkSummary, error) {
	out := []api.NetworkSummary{}
	err := d.store.View(func(tx *store.Tx) error {
		all, err := tx.Networks()
		if err != nil {
			return err
		}
		for _, n := range all {
			wls, err := tx.Workloads(n.Name)
			if err != nil {
				return err
			}
			s := api.NetworkSummary{Name: n.Name, State: "reserved", Workloads: len(wls)}
			if n.Spec != nil {
				s.State = "applied"
				s.Generation = n.Spec.Generation
				s.IPRange = n.Spec.IPRange
				s.Nodes = len(n.Spec.Nodes)
				if self, ok := n.Spec.Node(d.nodeID); ok {
					s.Subnet = self.Subnet
				}
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

// loadNetwork returns a network and its workloads, or a 404 error.
func (d *Daemon) loadNetwork(name string) (*store.Network, []*store.Workload, error) {
	if err := api.CheckName("name", name); err != nil {
		return nil, nil, err
	}
	var (
		n   *store.Network
		wls []*store.Workload
	)
	err := d.store.View(func(tx *store.Tx) error {
		var err error
		if n, err = tx.Network(name); err != nil {
			return err
		}
		wls, err = tx.Workloads(name)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, api.NotFound("name", "no network %s on node %s", name, d.nodeID)
	}
	return n, wls, err
}

// Network implements api.Service.
func (d *Daemon) Network(ctx context.Context, name string) (api.NetworkDetail, error) {
	n, wls, err := d.loadNetwork(name)
	if err != nil {
		return api.NetworkDetail{}, err
	}
	return api.NetworkDetail{Spec: n.Spec, Status: d.status(ctx, n, wls)}, nil
}

// Status implements api.Service.
func (d *Daemon) Status(ctx context.Context, network string) ([]api.NetworkStatus, error) {
	if network != "" {
		n, wls, err := d.loadNetwork(network)
		if err != nil {
			return nil, err
		}
		return []api.NetworkStatus{d.status(ctx, n, wls)}, nil
	}
	var (
		nets []*store.Network
		wls  map[string][]*store.Workload
	)
	err := d.store.View(func(tx *store.Tx) (err error) {
		nets, wls, err = allNetworks(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return d.statuses(ctx, nets, wls), nil
}

// allNetworks reads every network in tx and the workloads of each, by
// network name.
func allNetworks(tx *store.Tx) ([]*store.Network, map[string][]*store.Workload, error) {
	nets, err := tx.Networks()
	if err != nil {
		return nil, nil, err
	}
	wls := make(map[string][]*store.Workload, len(nets))
	for _, n := range nets {
		if wls[n.Name], err = tx.Workloads(n.Name); err != nil {
			return nil, nil, err
		}
	}
	return nets, wls, nil
}

// subnetsOf returns this node's subnets in an applied network.
func (d *Daemon) subnetsOf(s *spec.Spec) (ipam.Subnets, error) {
	self, ok := s.Node(d.nodeID)
	if !ok {
		return ipam.Subnets{}, fmt.Errorf("node %s is not a member", d.nodeID)
	}
	return ipam.NodeSubnets(s.IPRange, s.IPv6Range, self.Subnet)
}

// mutationTimeout bounds one change of the kernel objects.
const mutationTimeout = 2 * time.Minute

// detach returns the context a change runs under once it has started: a
// client that hangs up must not leave a change half done, so the caller's
// cancellation is dropped and a fixed bound is put in its place.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), mutationTimeout)
}
