package daemon

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/namespaces"
)

// link is what the tests look at of one link.
type link struct {
	name  string
	up    bool
	mtu   int
	addrs []netip.Prefix // global ones, sorted
}

// route is one route of a namespace's main table.
type route struct {
	dst netip.Prefix // invalid for a default route
	gw  netip.Addr
	dev string
}

func (r route) String() string {
	s := "default"
	if r.dst.IsValid() {
		s = r.dst.String()
	}
	if r.gw.IsValid() {
		s += " via " + r.gw.String()
	}
	return s + " dev " + r.dev
}

// nsView is a snapshot of a namespace's links, routes and znet tables.
type nsView struct {
	links  map[string]link
	routes []route
	tables []string // "inet znet", ...
	chains []string // "bridge znet port-...", ...
}

// view reads namespace path (a name or a path). The handles are closed
// before it returns, so the namespace is not kept alive.
func view(t *testing.T, path string) nsView {
	t.Helper()
	ns, err := namespaces.Open(path)
	require.NoError(t, err)
	defer func() { _ = ns.Close() }()
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	defer h.Close()

	v := nsView{links: map[string]link{}}
	links, err := retryDump(h.LinkList)
	require.NoError(t, err)
	names := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		names[a.Index] = a.Name
		lk := link{name: a.Name, up: a.Flags&net.FlagUp != 0, mtu: a.MTU}
		addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_ALL) })
		require.NoError(t, err)
		for _, ad := range addrs {
			ip, _ := netip.AddrFromSlice(ad.IP)
			ones, _ := ad.Mask.Size()
			if ip.IsLinkLocalUnicast() || ip.IsLoopback() {
				continue
			}
			lk.addrs = append(lk.addrs, netip.PrefixFrom(ip.Unmap(), ones))
		}
		sort.Slice(lk.addrs, func(i, j int) bool { return lk.addrs[i].String() < lk.addrs[j].String() })
		v.links[a.Name] = lk
	}
	routes, err := retryDump(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	require.NoError(t, err)
	for _, r := range routes {
		rt := route{dst: prefixOf(r.Dst), dev: names[r.LinkIndex]}
		if r.Gw != nil {
			gw, _ := netip.AddrFromSlice(r.Gw)
			rt.gw = gw.Unmap()
		}
		if rt.dst.IsValid() && (rt.dst.Addr().IsLinkLocalUnicast() || rt.dst.Addr().IsMulticast()) {
			continue
		}
		v.routes = append(v.routes, rt)
	}

	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	require.NoError(t, err)
	tables, err := c.ListTables()
	require.NoError(t, err)
	for _, tb := range tables {
		v.tables = append(v.tables, family(tb.Family)+" "+tb.Name)
	}
	chains, err := c.ListChains()
	require.NoError(t, err)
	for _, ch := range chains {
		v.chains = append(v.chains, family(ch.Table.Family)+" "+ch.Table.Name+" "+ch.Name)
	}
	sort.Strings(v.tables)
	sort.Strings(v.chains)
	return v
}

func family(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyBridge:
		return "bridge"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	}
	return "other"
}

// routeStrings returns v's routes through dev as strings, sorted; the
// routes the kernel makes for the link's own addresses are left out.
func (v nsView) routeStrings(dev string) []string {
	var out []string
	for _, r := range v.routes {
		if r.dev != dev {
			continue
		}
		if !r.gw.IsValid() && r.dst.IsValid() && slices.ContainsFunc(v.links[dev].addrs, func(p netip.Prefix) bool {
			return p.Masked() == r.dst
		}) {
			continue
		}
		out = append(out, r.String())
	}
	sort.Strings(out)
	return out
}

// hasDefault reports whether v has a default route (either family).
func (v nsView) hasDefault() bool {
	return slices.ContainsFunc(v.routes, func(r route) bool { return !r.dst.IsValid() || r.dst.Bits() == 0 })
}

// sysctl reads key (path form) inside namespace path.
func sysctl(t *testing.T, path, key string) string {
	t.Helper()
	var out string
	require.NoError(t, namespaces.DoPath(path, func() error {
		b, err := os.ReadFile(filepath.Join("/proc/sys", key))
		out = strings.TrimSpace(string(b))
		return err
	}))
	return out
}

// netnsOf returns the namespace id of process pid.
func netnsOf(t *testing.T, pid int) uint64 {
	t.Helper()
	id, err := namespaces.ID("/proc/" + strconv.Itoa(pid) + "/ns/net")
	require.NoError(t, err)
	return id
}
