package netconf

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/znet/znet/firewall"
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
}

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

// LinkInfo describes a link of the namespace.
type LinkInfo struct {
	Name string
	// Kind is the link's type as netlink names it: "veth", "tuntap",
	// "bridge", "wireguard", "device", ...
	Kind string
}

// Raw is implemented by the kernel's namespaces only: the handles for
// the work that is not behind Namespace yet (workloads' ports, egress).
type Raw interface {
	NsHandle() netns.NsHandle
	Handle() *netlink.Handle
}
