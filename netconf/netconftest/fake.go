package netconftest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/znet/znet/firewall"
	"github.com/znet/znet/netconf"
)

// Operations that FailNext can make fail.
const (
	OpOpen       = "open"
	OpPrepare    = "prepare"
	OpSetLink    = "setlink"
	OpRoutes     = "routes"
	OpProxyNeigh = "proxyneigh"
	OpInstall    = "install"
	OpDeleteLink = "deletelink"
	OpDelete     = "delete"
	OpOpenPath   = "openpath"
	OpSetMTU     = "setmtu"
	OpAddPort    = "addport"
	OpPin        = "pin"
	OpRouteVia   = "routevia"
	OpAddRoute   = "addroute"
	OpNeigh      = "neigh"
	OpSysctls    = "sysctls"
	OpFlush      = "flush"
	OpUplink     = "uplink"
)

// Host is a fake netconf.Host. Its methods may be called concurrently.
type Host struct {
	mu     sync.Mutex
	spaces map[string]*space
	fail   map[string]error
	cookie uint64
	calls  []string
	// under is the underlay (UnderlayName), uplink its egress table.
	under  *space
	uplink []firewall.EgressLink
}

var (
	_ netconf.Host      = (*Host)(nil)
	_ netconf.Namespace = (*Namespace)(nil)
)

type space struct {
	name     string
	cookie   uint64
	next     int                                        // the next link's index
	via      map[string][]route                         // link -> routes via a gateway, sorted
	neighs   map[string]map[netip.Addr]net.HardwareAddr // link -> permanent neighbours
	links    map[string]*link
	routes   map[string][]netip.Prefix // link -> sorted
	neigh    map[string][]netip.Addr   // link -> sorted
	sysctls  map[string]string
	rules    *firewall.Rules
	gen      uint32
	installs int
}

type link struct {
	kind  string
	mtu   int
	mac   net.HardwareAddr
	up    bool
	addrs []netip.Prefix
	index int
	// master is the bridge a port is on; pin the MAC pinned to it.
	master string
	pin    net.HardwareAddr
	// peer is a veth's other end, in space peerIn.
	peer   *link
	peerIn *space
	name   string
}

// New returns a Host without namespaces.
func New() *Host {
	// Cookies (and inodes) start after selfIno, the underlay's.
	return &Host{spaces: map[string]*space{}, fail: map[string]error{}, cookie: selfIno,
		under: newSpace(UnderlayName, selfIno)}
}

// FailNext makes the next call of op (one of the Op constants) return err.
func (h *Host) FailNext(op string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fail[op] = err
}

// FailNextIn makes the next call of op in namespace ns return err.
func (h *Host) FailNextIn(ns, op string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fail[op+" "+ns] = err
}

// failLocked returns the error set for op (in namespace ns), once, and
// records the call as "op ns[ detail]".
func (h *Host) failLocked(op, ns, detail string) error {
	call := op + " " + ns
	if detail != "" {
		call += " " + detail
	}
	h.calls = append(h.calls, call)
	for _, key := range []string{op + " " + ns, op} {
		if err, ok := h.fail[key]; ok {
			delete(h.fail, key)
			return err
		}
	}
	return nil
}

// Calls returns the operations called so far, as "op name", and forgets
// them.
func (h *Host) Calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.calls
	h.calls = nil
	return out
}

// Add makes namespace name, with links of the kinds given (name -> kind),
// as another daemon or an earlier run would have left it.
func (h *Host) Add(name string, links map[string]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.spaceLocked(name)
	for l, kind := range links {
		s.add(l, &link{kind: kind})
	}
}

// Remove makes namespace name vanish, as a reboot does (or a workload's
// namespace going away: the veths with an end in it go too).
func (h *Host) Remove(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(name)
}

// removeLocked deletes namespace name with its links, and so the veths
// that have an end there.
func (h *Host) removeLocked(name string) {
	if s := h.spaces[name]; s != nil {
		for n := range s.links {
			s.deleteLink(n)
		}
	}
	delete(h.spaces, name)
}

// Names returns the namespaces, sorted.
func (h *Host) Names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.spaces))
	for n := range h.spaces {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Installs returns how many times a firewall was installed in namespace
// name since it was made.
func (h *Host) Installs(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.spaces[name]; s != nil {
		return s.installs
	}
	return 0
}

// Rules returns the firewall of namespace name; nil if none.
func (h *Host) Rules(name string) *firewall.Rules {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.spaces[name]; s != nil && s.rules != nil {
		r := *s.rules
		return &r
	}
	return nil
}

// Render returns what namespace name holds, one object a line, sorted:
//
//	link znbr bridge mtu 1420 up mac 02:00:00:00:00:01
//	addr znbr 10.20.1.1/24
//	route 10.20.2.0/24 dev wg0
//	proxy fd00::5 dev znbr
//
// and, for workloads' ports and namespaces:
//
//	link vw0123456789 veth mtu 1400 up master znbr peer wl1/znet0
//	fdb 02:00:00:00:00:02 dev vw0123456789
//	route 10.20.0.0/16 via 10.20.1.1 dev znet0
//
// and "" for a namespace that does not exist. Sysctls and the firewall
// are left out (see Sysctl and Rules).
func (h *Host) Render(name string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.lookupLocked(name)
	if s == nil {
		return ""
	}
	var lines []string
	for n, l := range s.links {
		lines = append(lines, l.render(n))
		if l.pin != nil {
			lines = append(lines, fmt.Sprintf("fdb %s dev %s", l.pin, n))
		}
		for _, a := range l.addrs {
			lines = append(lines, fmt.Sprintf("addr %s %s", n, a))
		}
	}
	for n, ps := range s.routes {
		for _, p := range ps {
			lines = append(lines, fmt.Sprintf("route %s dev %s", p, n))
		}
	}
	for n, rs := range s.via {
		for _, r := range rs {
			lines = append(lines, r.render(n))
		}
	}
	for n, ns := range s.neighs {
		for ip, mac := range ns {
			lines = append(lines, fmt.Sprintf("neigh %s lladdr %s dev %s", ip, mac, n))
		}
	}
	for n, as := range s.neigh {
		for _, a := range as {
			lines = append(lines, fmt.Sprintf("proxy %s dev %s", a, n))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// Sysctl returns the value Prepare wrote for key in namespace name.
func (h *Host) Sysctl(name, key string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.lookupLocked(name); s != nil {
		return s.sysctls[key]
	}
	return ""
}

// ChangeRuleset bumps the nftables generation of namespace name, as an
// operator's nft command would.
func (h *Host) ChangeRuleset(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.spaces[name]; s != nil {
		s.gen++
	}
}

func (h *Host) spaceLocked(name string) *space {
	s := h.spaces[name]
	if s == nil {
		h.cookie++
		s = newSpace(name, h.cookie)
		h.spaces[name] = s
	}
	return s
}

// Open implements netconf.Host.
func (h *Host) Open(name string, create bool) (netconf.Namespace, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.failLocked(OpOpen, name, ""); err != nil {
		return nil, err
	}
	if h.spaces[name] == nil && !create {
		return nil, fmt.Errorf("opening namespace %s: no such namespace", name)
	}
	return &Namespace{h: h, name: name, s: h.spaceLocked(name)}, nil
}

// Delete implements netconf.Host.
func (h *Host) Delete(ctx context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.failLocked(OpDelete, name, ""); err != nil {
		return err
	}
	h.removeLocked(name)
	return nil
}

// List implements netconf.Host.
func (h *Host) List(prefix string) ([]string, error) {
	var out []string
	for _, n := range h.Names() {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Lookup implements netconf.Host.
func (h *Host) Lookup(prefix string, ino uint64) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, s := range h.spaces {
		if strings.HasPrefix(name, prefix) && s.cookie == ino {
			return name, nil
		}
	}
	return "", nil
}

// Namespace is an open namespace of a fake Host. It keeps working on the
// namespace's objects after Host.Remove, as an open kernel namespace does.
type Namespace struct {
	h    *Host
	name string
	s    *space
}

// Close implements netconf.Namespace.
func (n *Namespace) Close() error { return nil }

// Cookie implements netconf.Namespace.
func (n *Namespace) Cookie() (uint64, error) { return n.s.cookie, nil }

// Prepare implements netconf.Namespace.
func (n *Namespace) Prepare(sysctls []netconf.Sysctl) error {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if err := n.h.failLocked(OpPrepare, n.name, ""); err != nil {
		return err
	}
	n.s.links["lo"].up = true
	for _, s := range sysctls {
		n.s.sysctls[s.Key] = s.Value
	}
	return nil
}

// SetLink implements netconf.Namespace.
func (n *Namespace) SetLink(l netconf.Link) (netconf.LinkState, error) {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if err := n.h.failLocked(OpSetLink, n.name, l.Name); err != nil {
		return netconf.LinkState{}, err
	}
	have := n.s.links[l.Name]
	if have == nil {
		kind := "device"
		if l.Bridge {
			kind = "bridge"
		}
		have = &link{kind: kind}
		n.s.add(l.Name, have)
	}
	st := netconf.LinkState{Index: have.index, WasUp: have.up}
	have.mtu, have.up = l.MTU, true
	if l.MAC != nil {
		have.mac = slices.Clone(l.MAC)
	}
	have.addrs = sortedPrefixes(l.Addrs)
	return st, nil
}

// Routes implements netconf.Namespace. have is not checked against what
// the fake holds: a caller that remembers wrongly gets what it asked for.
func (n *Namespace) Routes(name string, have, want []netip.Prefix) error {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if err := n.h.failLocked(OpRoutes, n.name, name); err != nil {
		return err
	}
	if n.s.links[name] == nil {
		return fmt.Errorf("finding %s: no such link", name)
	}
	n.s.routes[name] = sortedPrefixes(want)
	if len(want) == 0 {
		delete(n.s.routes, name)
	}
	return nil
}

// ProxyNeigh implements netconf.Namespace.
func (n *Namespace) ProxyNeigh(name string, want []netip.Addr) error {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if err := n.h.failLocked(OpProxyNeigh, n.name, name); err != nil {
		return err
	}
	if n.s.links[name] == nil {
		return fmt.Errorf("finding %s: no such link", name)
	}
	as := slices.Clone(want)
	slices.SortFunc(as, netip.Addr.Compare)
	n.s.neigh[name] = as
	if len(as) == 0 {
		delete(n.s.neigh, name)
	}
	return nil
}

// Links implements netconf.Namespace.
func (n *Namespace) Links() ([]netconf.LinkInfo, error) {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	var out []netconf.LinkInfo
	for name, l := range n.s.links {
		out = append(out, l.info(name))
	}
	slices.SortFunc(out, func(a, b netconf.LinkInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteLink implements netconf.Namespace.
func (n *Namespace) DeleteLink(name string) error {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if err := n.h.failLocked(OpDeleteLink, n.name, name); err != nil {
		return err
	}
	n.s.deleteLink(name)
	return nil
}

// Install implements firewall.Installer.
func (n *Namespace) Install(r firewall.Rules) error {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	if err := n.h.failLocked(OpInstall, n.name, ""); err != nil {
		return err
	}
	n.s.rules = &r
	n.s.gen++
	n.s.installs++
	return nil
}

// Generation implements firewall.Installer.
func (n *Namespace) Generation() (uint32, error) {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	return n.s.gen, nil
}

func sortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	out := slices.Clone(ps)
	slices.SortFunc(out, netip.Prefix.Compare)
	return out
}
