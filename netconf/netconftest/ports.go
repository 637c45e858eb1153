package netconftest

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/netconf"
)

// selfIno is the inode Identify gives netconf.SelfPath, the underlay's
// namespace; the fake's namespaces have others.
const selfIno = 1

// route is a route via a gateway (on-link: a neighbour maps it).
type route struct {
	dst    netip.Prefix
	gw     netip.Addr
	onlink bool
}

func (r route) render(link string) string {
	line := fmt.Sprintf("route %s via %s dev %s", r.dst, r.gw, link)
	if r.onlink {
		line += " onlink"
	}
	return line
}

func newSpace(name string, cookie uint64) *space {
	s := &space{name: name, cookie: cookie, links: map[string]*link{},
		routes: map[string][]netip.Prefix{}, neigh: map[string][]netip.Addr{}, sysctls: map[string]string{},
		via: map[string][]route{}, neighs: map[string]map[netip.Addr]net.HardwareAddr{}}
	s.add("lo", &link{kind: "device", mtu: 65536})
	return s
}

// add puts l into s as name, with the next index.
func (s *space) add(name string, l *link) {
	s.next++
	l.index, l.name = s.next, name
	s.links[name] = l
}

// deleteLink removes link name with its routes and, for a veth, its other
// end (in whatever namespace), as the kernel does.
func (s *space) deleteLink(name string) {
	l := s.links[name]
	delete(s.links, name)
	delete(s.routes, name)
	delete(s.neigh, name)
	delete(s.via, name)
	delete(s.neighs, name)
	if l != nil && l.peer != nil {
		p, in := l.peer, l.peerIn
		l.peer, p.peer = nil, nil
		if in.links[p.name] == p {
			in.deleteLink(p.name)
		}
	}
}

func (l *link) render(name string) string {
	line := fmt.Sprintf("link %s %s mtu %d", name, l.kind, l.mtu)
	if l.up {
		line += " up"
	}
	if l.mac != nil {
		line += " mac " + l.mac.String()
	}
	if l.master != "" {
		line += " master " + l.master
	}
	if l.peer != nil {
		line += " peer " + l.peerIn.name + "/" + l.peer.name
	}
	return line
}

func (l *link) info(name string) netconf.LinkInfo {
	info := netconf.LinkInfo{Name: name, Kind: l.kind, Index: l.index, MTU: l.mtu, MAC: slices.Clone(l.mac)}
	if l.peer != nil {
		info.Peer = l.peer.index
	}
	return info
}

// isSelf reports whether path names the caller's own namespace: the
// underlay, where znetd runs.
func isSelf(path string) bool { return path == netconf.SelfPath || path == "/proc/self/ns/net" }

// pathName returns the fake's name of the namespace at path: its name in
// namespaces.Dir, else the path itself (a /proc path: tests Add it so).
func pathName(path string) string {
	if name, ok := strings.CutPrefix(path, namespaces.Dir+"/"); ok {
		return name
	}
	return path
}

// OpenPath implements netconf.Host: path names a namespace in
// namespaces.Dir, one Added under the path itself, or the underlay
// (/proc/self/ns/net, netconf.SelfPath). The identity's
// inode and cookie are both the namespace's cookie, so a namespace
// removed and added again is another one.
func (h *Host) OpenPath(path string) (netconf.Namespace, namespaces.Identity, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	name := pathName(path)
	if err := h.failLocked(OpOpenPath, name, ""); err != nil {
		return nil, namespaces.Identity{}, err
	}
	if isSelf(path) {
		return &Namespace{h: h, name: UnderlayName, s: h.under}, namespaces.Identity{Ino: selfIno}, nil
	}
	s := h.spaces[name]
	if s == nil {
		return nil, namespaces.Identity{}, fmt.Errorf("opening namespace %s: no such namespace", path)
	}
	return &Namespace{h: h, name: name, s: s}, namespaces.Identity{Ino: s.cookie, Cookie: s.cookie}, nil
}

// Identify implements netconf.Host.
func (h *Host) Identify(path string) (namespaces.Identity, error) {
	ns, id, err := h.OpenPath(path)
	if err != nil {
		return namespaces.Identity{}, err
	}
	_ = ns.Close()
	return id, nil
}

// vethMAC returns the MAC of veth end name in namespace ns when it is
// given none. The kernel picks a random one; the fake derives it from the
// names, so that an end made again renders the same.
func vethMAC(ns, name string) net.HardwareAddr {
	sum := sha256.Sum256([]byte(ns + "/" + name))
	return net.HardwareAddr{0x02, sum[0], sum[1], sum[2], sum[3], sum[4]}
}

// linkLocked returns link name, or an error wrapping netconf.ErrNoLink.
func (n *Namespace) linkLocked(name string) (*link, error) {
	if l := n.s.links[name]; l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("finding %s: %w", name, netconf.ErrNoLink)
}

// Link implements netconf.Namespace.
func (n *Namespace) Link(name string) (netconf.LinkInfo, error) {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	l, err := n.linkLocked(name)
	if err != nil {
		return netconf.LinkInfo{}, err
	}
	return l.info(name), nil
}

// SetMTU implements netconf.Namespace.
func (n *Namespace) SetMTU(name string, mtu int) error {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if err := n.h.failLocked(OpSetMTU, n.name, name); err != nil {
		return err
	}
	l, err := n.linkLocked(name)
	if err != nil {
		return err
	}
	l.mtu = mtu
	return nil
}

// AddPort implements netconf.Namespace. peer must be a Namespace of the
// same Host for a veth.
func (n *Namespace) AddPort(p netconf.Port, peer netconf.Namespace) error {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if err := n.h.failLocked(OpAddPort, n.name, p.Name); err != nil {
		return err
	}
	if p.Master != "" {
		if _, err := n.linkLocked(p.Master); err != nil {
			return err
		}
	}
	if n.s.links[p.Name] != nil {
		return fmt.Errorf("adding %s: file exists", p.Name)
	}
	if p.Tap {
		n.s.add(p.Name, &link{kind: "tuntap", mtu: p.MTU, mac: slices.Clone(p.MAC), master: p.Master, up: true})
		return nil
	}
	other, ok := peer.(*Namespace)
	if u, isUnder := peer.(*Underlay); isUnder {
		other, ok = u.Namespace, true
	}
	if !ok || other.h != n.h {
		return fmt.Errorf("veth %s: the other end's namespace is not this fake's", p.Name)
	}
	if other.s.links[p.PeerName] != nil {
		return fmt.Errorf("adding veth: %s: file exists", p.PeerName)
	}
	mtu := p.MTU
	if mtu == 0 {
		mtu = 1500
	}
	peerMAC := slices.Clone(p.PeerMAC)
	if peerMAC == nil {
		peerMAC = vethMAC(other.name, p.PeerName)
	}
	here := &link{kind: "veth", mtu: mtu, mac: vethMAC(n.name, p.Name), master: p.Master, peerIn: other.s}
	there := &link{kind: "veth", mtu: mtu, mac: peerMAC, peer: here, peerIn: n.s}
	here.peer = there
	n.s.add(p.Name, here)
	other.s.add(p.PeerName, there)
	return nil
}

// Pin implements netconf.Namespace.
func (n *Namespace) Pin(port string, mac net.HardwareAddr) error {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if err := n.h.failLocked(OpPin, n.name, port); err != nil {
		return err
	}
	l, err := n.linkLocked(port)
	if err != nil {
		return err
	}
	l.pin = slices.Clone(mac)
	return nil
}

// RouteVia implements netconf.Namespace.
func (n *Namespace) RouteVia(name string, dst netip.Prefix, gw netip.Addr, on bool) error {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if err := n.h.failLocked(OpRouteVia, n.name, name); err != nil {
		return err
	}
	if _, err := n.linkLocked(name); err != nil {
		return err
	}
	// Replacing matches the destination; removing, the gateway too.
	rs := slices.DeleteFunc(n.s.via[name], func(r route) bool { return r.dst == dst && (on || r.gw == gw) })
	if on {
		rs = append(rs, route{dst: dst, gw: gw})
		slices.SortFunc(rs, func(a, b route) int { return a.dst.Compare(b.dst) })
	}
	n.s.via[name] = rs
	if len(rs) == 0 {
		delete(n.s.via, name)
	}
	return nil
}
