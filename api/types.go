package api

import (
	"context"
	"net/netip"
	"time"

	"github.com/znet/znet/spec"
)

// Service is what znetd does; the server exposes it and the client speaks to
// it. Every method is safe for concurrent use. Bad input is a
// *spec.FieldError (see Invalid; names are checked with CheckName), other
// errors are *Error or wrap ErrNotFound / ErrConflict.
type Service interface {
	// Reserve makes this node's key and UDP port for network (idempotent).
	Reserve(ctx context.Context, network string) (Reservation, error)
	// ReservePort is Reserve with a chosen UDP port: it reserves the
	// network with that port, or moves an existing reservation to it (the
	// device follows at the next apply, whose spec must carry the new port).
	ReservePort(ctx context.Context, network string, port int) (Reservation, error)
	// Apply creates or updates a network from a spec, which it validates
	// (spec.Validate for this node): the server only parses it.
	Apply(ctx context.Context, s *spec.Spec) (ApplyResult, error)
	// Networks lists the networks this node knows, sorted by name.
	Networks(ctx context.Context) ([]NetworkSummary, error)
	// Network returns one network's applied spec and status.
	Network(ctx context.Context, name string) (NetworkDetail, error)
	// DeleteNetwork removes a network; with workloads attached only if force.
	DeleteNetwork(ctx context.Context, name string, force bool) error
	// Attach connects a workload's namespace to a network.
	Attach(ctx context.Context, network string, req AttachRequest) (Attachment, error)
	// Detach disconnects a workload (its namespace may be gone already).
	Detach(ctx context.Context, network, name string) error
	// Workloads lists a network's workloads on this node, sorted by name.
	Workloads(ctx context.Context, network string) ([]Workload, error)
	// Workload returns what one attached workload got, as Attach answered
	// it (a tap's monitor and guest configuration are made from it).
	Workload(ctx context.Context, network, name string) (Attachment, error)
	// Status reports live state of one network ("" for all), sorted by name.
	Status(ctx context.Context, network string) ([]NetworkStatus, error)
	// AddAccess lets a person's device join a network through this node.
	AddAccess(ctx context.Context, network string, req AccessRequest) (AccessGrant, error)
	// RemoveAccess cuts an access peer off at once.
	RemoveAccess(ctx context.Context, network, name string) error
	// AccessPeers lists a network's access peers on this node, sorted by name.
	AccessPeers(ctx context.Context, network string) ([]AccessPeer, error)
}

// AccessRequest asks to let a device in. The private key stays with the
// client: only the public key is sent.
type AccessRequest struct {
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
}

// AccessPeer is one device allowed into a network through this node.
type AccessPeer struct {
	Name      string     `json:"name"`
	PublicKey string     `json:"public_key"`
	IPv4      netip.Addr `json:"ipv4"`
	IPv6      netip.Addr `json:"ipv6"`
}

// AccessGrant is what a new access peer needs for its wg-quick config
// (everything but its private key).
type AccessGrant struct {
	AccessPeer
	Network string `json:"network"`
	// NodePublicKey is this node's key for the network.
	NodePublicKey string `json:"node_public_key"`
	// Endpoint is this node's host:port in the applied spec.
	Endpoint  string       `json:"endpoint"`
	IPRange   netip.Prefix `json:"ip_range"`
	IPv6Range netip.Prefix `json:"ipv6_range"`
	// DNS is the node's gateway, where the network's resolver answers.
	DNS netip.Addr `json:"dns"`
	MTU int        `json:"mtu"`
}

// Reservation is a node's place in a network: the key and port it made.
type Reservation struct {
	NodeID     string `json:"node_id"`
	PublicKey  string `json:"public_key"`
	ListenPort int    `json:"listen_port"`
}

// ReserveRequest is the optional body of a reserve.
type ReserveRequest struct {
	// ListenPort asks for this UDP port (0: keep the reserved one, or pick).
	ListenPort int `json:"listen_port,omitempty"`
}

// ApplyResult says what an apply did.
type ApplyResult struct {
	Name       string `json:"name"`
	Generation uint64 `json:"generation"`
	// Changed is false when the same generation and spec were applied already.
	Changed bool `json:"changed"`
}

// NetworkSummary is one row of `znet network list`.
type NetworkSummary struct {
	Name       string `json:"name"`
	Generation uint64 `json:"generation"`
	// State is "reserved" (no spec applied yet) or "applied".
	State     string       `json:"state"`
	IPRange   netip.Prefix `json:"ip_range,omitzero"`
	Subnet    netip.Prefix `json:"subnet,omitzero"`
	Nodes     int          `json:"nodes"`
	Workloads int          `json:"workloads"`
}

// NetworkDetail is `znet network show`.
type NetworkDetail struct {
	Spec   *spec.Spec    `json:"spec"`
	Status NetworkStatus `json:"status"`
}

// NetworkStatus is the live state of one network on this node.
type NetworkStatus struct {
	Name       string       `json:"name"`
	NodeID     string       `json:"node_id"`
	Generation uint64       `json:"generation"`
	Namespace  string       `json:"namespace"`
	Interface  string       `json:"interface"`
	Backend    string       `json:"backend"`
	PID        int          `json:"dataplane_pid,omitempty"`
	PublicKey  string       `json:"public_key"`
	ListenPort int          `json:"listen_port"`
	Subnet     netip.Prefix `json:"subnet,omitzero"`
	Subnet6    netip.Prefix `json:"subnet6,omitzero"`
	Gateway    netip.Addr   `json:"gateway,omitzero"`
	Gateway6   netip.Addr   `json:"gateway6,omitzero"`
	Workloads  int          `json:"workloads"`
	// MTU is the network's MTU on this node (its WireGuard device's): the
	// spec's, or derived from this node's underlay.
	MTU int `json:"mtu,omitempty"`
	// TooBigDrops counts the packets the data plane could not send because
	// the underlay refused them as too big (EMSGSIZE), since the network's
	// data plane first started here; LastTooBigDrop is when the last was.
	TooBigDrops    uint64    `json:"too_big_drops,omitempty"`
	LastTooBigDrop time.Time `json:"last_too_big_drop,omitzero"`
	// Egress tells whether the network has a way out through this node,
	// and EgressAddress the node address its flows leave from (source NAT).
	Egress        bool         `json:"egress"`
	EgressAddress netip.Addr   `json:"egress_address,omitzero"`
	Peers         []PeerStatus `json:"peers"`
	// DNS is what this node's resolver of the network holds.
	DNS *DNSStatus `json:"dns,omitempty"`
	// Problems lists what is wrong right now, in words an operator can act on.
	Problems []string `json:"problems,omitempty"`
	// DataplaneRestarts is how many times znetd restarted this network's
	// data plane after it died, since znetd started.
	DataplaneRestarts int `json:"dataplane_restarts"`
	// DataplaneLastExit says how the data plane last died ("killed by
	// signal 9 (killed)", "exited with status 2"); DataplaneLastExitAt is
	// when znetd noticed. Empty while it never died under this znetd.
	DataplaneLastExit   string    `json:"dataplane_last_exit,omitempty"`
	DataplaneLastExitAt time.Time `json:"dataplane_last_exit_at,omitzero"`
}

// DNSStatus is the state of one node's resolver of a network: its own zone
// serial and record count, and what it holds of each other member.
type DNSStatus struct {
	Serial  uint32      `json:"serial"`
	Records int         `json:"records"`
	Members []DNSMember `json:"members"`
	// Queries counts the resolver's answers since its data plane started,
	// by response code (NOERROR, NXDOMAIN, REFUSED, ...).
	Queries map[string]uint64 `json:"queries,omitempty"`
}

// DNSMember is what a resolver holds of another member's records.
type DNSMember struct {
	ID       string    `json:"id"`
	Serial   uint32    `json:"serial"`
	Records  int       `json:"records"`
	LastSync time.Time `json:"last_sync,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// PeerStatus is one WireGuard peer of a network on this node.
type PeerStatus struct {
	// Name is the peer's node id (or access peer name).
	Name          string         `json:"name"`
	PublicKey     string         `json:"public_key"`
	Endpoint      string         `json:"endpoint,omitempty"`
	AllowedIPs    []netip.Prefix `json:"allowed_ips"`
	LastHandshake time.Time      `json:"last_handshake,omitzero"`
	RxBytes       int64          `json:"rx_bytes"`
	TxBytes       int64          `json:"tx_bytes"`
}

// AttachRequest asks to connect a workload.
type AttachRequest struct {
	Name string `json:"name"`
	// NetNS is the workload's namespace path (/run/netns/NAME, /proc/PID/ns/net).
	NetNS string `json:"netns"`
	// IPv4 is an optional wanted address inside this node's subnet.
	IPv4 netip.Addr `json:"ipv4,omitzero"`
	// IfName is the interface name inside the workload (default znet0, znet1...).
	IfName string `json:"ifname,omitempty"`
	// Tap asks for a VM's NIC instead of a veth: a persistent tap device in
	// the network's namespace (NetNS and IfName must be empty then).
	Tap bool `json:"tap,omitempty"`
	// MAC is the tap's (and so the guest's) MAC address; default: derived
	// from the network and workload name.
	MAC string `json:"mac,omitempty"`
	// Queues is the tap's number of queues (default 1; more makes it
	// multi-queue).
	Queues int `json:"queues,omitempty"`
}

// Workload kinds.
const (
	KindNetNS = "netns"
	KindTap   = "tap"
)

// Route is a route a workload (or a guest) needs: To via Via.
type Route struct {
	To  netip.Prefix `json:"to"`
	Via netip.Addr   `json:"via"`
}

// Attachment is what a workload got.
type Attachment struct {
	IPv4      netip.Addr   `json:"ipv4"`
	IPv6      netip.Addr   `json:"ipv6"`
	Gateway   netip.Addr   `json:"gateway"`
	Gateway6  netip.Addr   `json:"gateway6"`
	DNS       []netip.Addr `json:"dns"`
	Interface string       `json:"interface"`
	// Kind is KindNetNS or KindTap.
	Kind string `json:"kind,omitempty"`
	// NetNS is the namespace the interface is in (for a tap: the network's).
	NetNS string `json:"netns,omitempty"`
	// MAC is the MAC address the workload must send from.
	MAC string `json:"mac,omitempty"`
	MTU int    `json:"mtu,omitempty"`
	// Subnet and Subnet6 are the on-link prefixes of the interface.
	Subnet  netip.Prefix `json:"subnet,omitzero"`
	Subnet6 netip.Prefix `json:"subnet6,omitzero"`
	// Routes are the network's ranges via the gateways (none when a range
	// is the subnet itself); there is no default route.
	Routes []Route `json:"routes,omitempty"`
	// Domain is the DNS search domain (<network>.internal).
	Domain string `json:"domain,omitempty"`
	// Queues is a tap's number of queues.
	Queues int `json:"queues,omitempty"`
}

// Workload is one row of `znet workload list`.
type Workload struct {
	Name      string     `json:"name"`
	IPv4      netip.Addr `json:"ipv4"`
	IPv6      netip.Addr `json:"ipv6"`
	NetNS     string     `json:"netns"`
	Interface string     `json:"interface"`
	// Kind is KindNetNS or KindTap.
	Kind string `json:"kind"`
	// MAC is the address the workload's port is pinned to.
	MAC string `json:"mac,omitempty"`
	// State is "attached"; "netns-gone" when the workload's namespace no
	// longer exists; "netns-replaced" when its path now names another
	// namespace than the one attached (a pid reused, a named namespace made
	// again). znetd never plumbs a workload that is not attached; it keeps
	// its addresses until it is detached or attached again.
	State string `json:"state"`
}

// Workload states.
const (
	StateAttached  = "attached"
	StateNetNSGone = "netns-gone"
	// StateNetNSReplaced: see Workload.State.
	StateNetNSReplaced = "netns-replaced"
)
