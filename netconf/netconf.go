package netconf

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/znet/znet/firewall"
	"github.com/znet/znet/namespaces"
)

// ErrLingering is returned (wrapped) by Host.Delete when the namespace was
// deleted but the kernel did not let it go in time (a process still holds
// it): its name is free again, its objects may live on a little.
var ErrLingering = errors.New("namespace deleted but still held")

// Host opens the network namespaces of this node. Its methods may be
// called concurrently.
type Host interface {
	// Open returns namespace name, making it first when create is set and
	// it does not exist. The caller closes it.
	Open(name string, create bool) (Namespace, error)
	// Delete removes namespace name and waits until the kernel has let it
	// go; a namespace that does not exist is no error.
	Delete(ctx context.Context, name string) error
	// List returns the names of the namespaces that start with prefix.
	List(prefix string) ([]string, error)
	// Lookup returns the name of the namespace that starts with prefix
	// and whose Identity has Ino ino, "" for none. The caller holds a
	// handle of that namespace (the number is not another's meanwhile).
	// It costs far less per name than Identify.
	Lookup(prefix string, ino uint64) (string, error)
	// OpenPath opens the namespace at path (a workload's: a name in
	// namespaces.Dir, /run/netns/NAME or /proc/PID/ns/net) and returns its
	// identity read from the open handle, as namespaces.OpenIdentified
	// does (and with its errors). The caller closes it.
	OpenPath(path string) (Namespace, namespaces.Identity, error)
	// Identify returns the identity of the namespace at path, as OpenPath
	// does, without opening it for work; SelfPath names the caller's own
	// (the underlay znetd runs in).
	Identify(path string) (namespaces.Identity, error)
	// Underlay opens the node's underlay namespace, where its uplinks
	// are. The caller closes it.
	Underlay() (Underlay, error)
}

// Underlay is the node's underlay namespace, open: a Namespace that also
// tells where the node's traffic leaves, for the networks' way out.
type Underlay interface {
	Namespace
	// DefaultRoutes names the devices of the default routes of one
	// family (IPv6 with v6).
	DefaultRoutes(v6 bool) ([]string, error)
	// Addrs lists the addresses of every link.
	Addrs() ([]Addr, error)
	// RouteSource returns the source address of the route to dst (unset
	// when the route names none).
	RouteSource(dst netip.Addr) (netip.Addr, error)
	// InstallUplink makes the underlay's egress table translate the flows
	// of exactly links (firewall.ApplyUplink).
	InstallUplink(links []firewall.EgressLink) error
}

// Addr is an address of a link and its subnet's length.
type Addr struct {
	Prefix netip.Prefix
	// Unusable is set while the address is tentative or failed duplicate
	// detection.
	Unusable bool
}

// SelfPath is the namespace of the calling thread. thread-self, not self:
// /proc/self is the main thread's namespace, and the main thread may be
// inside another namespace at this moment, running a namespaces.Do of
// another goroutine.
const SelfPath = "/proc/thread-self/ns/net"

// Namespace is one open network namespace. It is used by one goroutine at
// a time; after Close no method may be called.
type Namespace interface {
	firewall.Installer
	// Cookie identifies the namespace: the kernel never gives the cookie
	// of a namespace to another one.
	Cookie() (uint64, error)
	// Prepare sets loopback up and writes sysctls, in order.
	Prepare(sysctls []Sysctl) error
	// SetLink makes link l.Name match l (made first if l.Bridge and it is
	// missing) and sets it up. It reports the link's state before.
	SetLink(l Link) (LinkState, error)
	// Routes makes the routes through link (main table, scope link)
	// exactly want. have is what the caller knows to be there (sorted, as
	// want): only the difference is changed then; nil reads the routes.
	Routes(link string, have, want []netip.Prefix) error
	// ProxyNeigh makes link answer IPv6 neighbour solicitations for
	// exactly want.
	ProxyNeigh(link string, want []netip.Addr) error
	// Links lists the links of the namespace.
	Links() ([]LinkInfo, error)
	// Link describes link name; a missing link is an error wrapping
	// ErrNoLink.
	Link(name string) (LinkInfo, error)
	// SetMTU sets link name's MTU.
	SetMTU(name string, mtu int) error
	// AddPort makes a workload's port on bridge p.Master: a veth pair
	// whose end p.PeerName goes into peer, or (p.Tap, peer nil) a
	// persistent tap, set up. A veth's end here is left down: the caller
	// sets it up (SetLink) once the other end is configured.
	AddPort(p Port, peer Namespace) error
	// Pin turns learning off on bridge port port and makes mac its only
	// static FDB entry, so frames for mac go to that port alone.
	Pin(port string, mac net.HardwareAddr) error
	// RouteVia adds (on, replacing) or removes (a missing route is no
	// error) the route to dst via gw through link, as a workload's routes
	// to its gateway are.
	RouteVia(link string, dst netip.Prefix, gw netip.Addr, on bool) error
	// AddRoute routes dst through link, replacing a route there was: via
	// hop on-link (no subnet holds hop; a Neigh maps it) or, with hop
	// unset, in scope link.
	AddRoute(link string, dst netip.Prefix, hop netip.Addr) error
	// Neigh maps ip to mac on link for good (a permanent entry).
	Neigh(link string, ip netip.Addr, mac net.HardwareAddr) error
	// Sysctls writes sysctls, in order (Prepare without the loopback).
	Sysctls(sysctls []Sysctl) error
	// Sysctl reads key under /proc/sys.
	Sysctl(key string) (string, error)
	// FlushConntrack deletes the tracked flows that left from addr or were
	// translated to it.
	FlushConntrack(addr netip.Addr) error
	// DeleteLink removes link name (with its peer, for a veth); a link
	// that is gone is no error.
	DeleteLink(name string) error
	// Close releases the namespace (not the namespace itself).
	Close() error
}

// Sysctl is a key under /proc/sys (such as "net/ipv4/ip_forward") and the
// value to write there.
type Sysctl struct {
	Key, Value string
	// Optional keys are skipped when they do not exist (their module is
	// not loaded).
	Optional bool
}

// Link is what SetLink makes a link hold.
type Link struct {
	Name string
	// Bridge makes the link as a bridge when it is missing; without it a
	// missing link is an error (another component makes it).
	Bridge bool
	MTU    int
	// MAC, when set, is the link's address; the kernel announces a new one
	// (arp_notify, ndisc_notify) so neighbours do not keep the old one.
	MAC net.HardwareAddr
	// Addrs are exactly the link's global addresses afterwards (link-local
	// ones are left alone). IPv6 addresses skip duplicate detection.
	Addrs []netip.Prefix
}

// LinkState is a link's state before SetLink changed it.
type LinkState struct {
	// Index is the link's index (the same before and after).
	Index int
	// WasUp tells whether the link was administratively up: a link that
	// went down lost its routes.
	WasUp bool
}

// ErrNoLink is wrapped by the errors for a link that does not exist.
var ErrNoLink = errors.New("no such link")

// LinkInfo describes a link of the namespace.
type LinkInfo struct {
	Name string
	// Kind is the link's type as netlink names it: "veth", "tuntap",
	// "bridge", "wireguard", "device", ...
	Kind  string
	Index int
	MTU   int
	MAC   net.HardwareAddr
	// Peer is, for a veth, the index of its other end in the namespace
	// that end is in (0 when unknown or not a veth).
	Peer int
}

// Port is a workload's port on a bridge, as AddPort makes it.
type Port struct {
	// Name is the port's link in this namespace; Master the bridge (none
	// for a veth that is no workload's port, such as the way out).
	Name, Master string
	MTU          int
	// Tap makes a persistent tap with Queues queues and the MAC MAC;
	// without it the port is a veth whose other end, PeerName, has the
	// MAC PeerMAC (and MTU).
	Tap      bool
	Queues   int
	MAC      net.HardwareAddr
	PeerName string
	PeerMAC  net.HardwareAddr
}
