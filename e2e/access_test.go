package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/access"
	"github.com/znet/znet/api"
	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
)

// laptop is a person's machine on the lab's internet, with Debian's
// wg-quick and wireguard-go.
type laptop struct {
	ns     string
	ifname string
	link   string // its veth inside ns
}

// newLaptop plugs a namespace into the lab's internet bridge with addr.
func newLaptop(t *testing.T, l *lab.Lab, addr string) *laptop {
	t.Helper()
	lp := &laptop{ns: "ztl" + randName(), ifname: "ztwg" + randName(), link: "eth0"}
	require.NoError(t, namespaces.Create(lp.ns))
	t.Cleanup(func() {
		// Deleting the namespace takes the TUN device with it, and
		// wireguard-go exits when its device goes.
		_, _ = inNS(lp.ns, "wg-quick", "down", lp.confPath()) // the config may not be up
		assert.NoError(t, namespaces.Delete(lp.ns))
		assert.NoError(t, os.RemoveAll(filepath.Join("/etc/netns", lp.ns)))
		_ = os.Remove("/var/run/wireguard/" + lp.ifname + ".sock") // gone with its device, usually
	})
	inet, err := namespaces.Open(l.Internet)
	require.NoError(t, err)
	defer func() { _ = inet.Close() }()
	ns, err := namespaces.Open(lp.ns)
	require.NoError(t, err)
	defer func() { _ = ns.Close() }()
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	defer h.Close()
	outer := "l" + randName()
	require.NoError(t, h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: lp.link}, PeerName: outer, PeerNamespace: netlink.NsFd(inet)}))
	ih, err := netlink.NewHandleAt(inet)
	require.NoError(t, err)
	defer ih.Close()
	port, err := ih.LinkByName(outer)
	require.NoError(t, err)
	br, err := ih.LinkByName("inet0") // the lab's internet bridge
	require.NoError(t, err)
	require.NoError(t, ih.LinkSetMaster(port, br))
	require.NoError(t, ih.LinkSetUp(port))
	link, err := h.LinkByName(lp.link)
	require.NoError(t, err)
	require.NoError(t, h.LinkSetUp(link))
	lo, _ := h.LinkByName("lo")
	require.NoError(t, h.LinkSetUp(lo))
	// Roaming below adds the new address before dropping the old one; keep
	// the new one when the old (primary) goes.
	out, err := inNS(lp.ns, "sysctl", "-qw", "net.ipv4.conf."+lp.link+".promote_secondaries=1")
	require.NoError(t, err, out)
	lp.setAddr(t, "", addr)
	return lp
}

func (lp *laptop) confPath() string { return filepath.Join("/tmp", lp.ifname+".conf") }

// setAddr moves the laptop's underlay address (roaming).
func (lp *laptop) setAddr(t *testing.T, old, addr string) {
	t.Helper()
	out, err := inNS(lp.ns, "ip", "addr", "add", addr+"/24", "dev", lp.link)
	require.NoError(t, err, out)
	if old != "" {
		out, err := inNS(lp.ns, "ip", "addr", "del", old+"/24", "dev", lp.link)
		require.NoError(t, err, out)
	}
}

// up brings the config up with wg-quick (userspace wireguard-go). wg-quick
// sets DNS through resolvconf, which a namespace does not have: the DNS line
// goes to /etc/netns/NS/resolv.conf instead, the rest is used untouched.
func (lp *laptop) up(t *testing.T, conf string) {
	t.Helper()
	var kept []string
	var dns []string
	for _, line := range strings.Split(conf, "\n") {
		if v, ok := strings.CutPrefix(line, "DNS = "); ok {
			dns = strings.Split(v, ", ")
			continue
		}
		kept = append(kept, line)
	}
	require.NotEmpty(t, dns, "the config has a DNS line")
	resolv := fmt.Sprintf("nameserver %s\nsearch %s\n", dns[0], strings.Join(dns[1:], " "))
	require.NoError(t, os.MkdirAll(filepath.Join("/etc/netns", lp.ns), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join("/etc/netns", lp.ns, "resolv.conf"), []byte(resolv), 0o644))
	lp.wgQuickUp(t, strings.Join(kept, "\n"))
}

// wgQuickUp brings conf up with wg-quick as it is.
func (lp *laptop) wgQuickUp(t *testing.T, conf string) {
	t.Helper()
	require.NoError(t, os.WriteFile(lp.confPath(), []byte(conf), 0o600))
	t.Cleanup(func() { _ = os.Remove(lp.confPath()) })
	cmd := exec.Command("ip", "netns", "exec", lp.ns, "wg-quick", "up", lp.confPath())
	cmd.Env = append(os.Environ(), "WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
}

func (lp *laptop) down(t *testing.T) {
	t.Helper()
	out, err := inNS(lp.ns, "wg-quick", "down", lp.confPath())
	require.NoError(t, err, out)
}

// TestAccess covers issue 5: a person joins with the config znet prints.
func TestAccess(t *testing.T) {
	l := newLab(t, 3)
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	deploy(t, l, deployment(t, "shop", "10.50.0.0/16", l.Nodes, n3.ID))
	deploy(t, l, deployment(t, "other", "10.60.0.0/16", l.Nodes, n3.ID))
	ws := map[string]attached{}
	for _, n := range l.Nodes {
		ws[n.ID] = attach(t, n, "shop", "web"+n.ID[len(n.ID)-1:])
	}
	o2 := attach(t, n2, "other", "x")

	lp := newLaptop(t, l, "198.18.0.200")
	conf := znet(t, n1, "access", "add", "shop", "alice")
	cfg, err := access.Parse(conf)
	require.NoError(t, err)
	require.NotEmpty(t, cfg.PrivateKey)
	lp.up(t, conf)

	t.Run("the laptop reaches a workload on every node, IPv4 and IPv6", func(t *testing.T) {
		for _, n := range l.Nodes {
			assert.True(t, eventuallyPing(lp.ns, ws[n.ID].ipv4), "laptop -> %s %s", n.ID, ws[n.ID].ipv4)
			assert.True(t, eventuallyPing(lp.ns, ws[n.ID].ipv6), "laptop -> %s %s", n.ID, ws[n.ID].ipv6)
		}
	})
	t.Run("access peers are clients: nobody opens a connection to one", func(t *testing.T) {
		// A second person joins through another node.
		lp2 := newLaptop(t, l, "198.18.0.199")
		conf2 := znet(t, n2, "access", "add", "shop", "dave")
		cfg2, err := access.Parse(conf2)
		require.NoError(t, err)
		lp2.up(t, conf2)
		defer lp2.down(t)
		alice, dave := cfg.Addresses[0].Addr().String(), cfg2.Addresses[0].Addr().String()
		require.True(t, eventuallyPing(lp2.ns, ws[n1.ID].ipv4), "dave -> a workload on node 1 (the tunnel is up)")
		require.True(t, eventuallyPing(lp.ns, ws[n2.ID].ipv4), "alice -> a workload on node 2 (the tunnel is up)")
		assert.False(t, pingOK(lp2.ns, alice), "dave -> alice, across nodes")
		assert.False(t, pingOK(lp.ns, dave), "alice -> dave, across nodes")
		assert.False(t, pingOK(ws[n2.ID].ns, alice), "a workload -> alice")
		assert.False(t, pingOK(ws[n1.ID].ns, alice), "a workload on alice's node -> alice")
	})
	t.Run("the laptop resolves workload names through the config's DNS", func(t *testing.T) {
		for _, n := range l.Nodes {
			name := "web" + n.ID[len(n.ID)-1:]
			ok, _ := within(3*time.Second, func() bool { a, _ := dig(t, lp.ns, name); return a == ws[n.ID].ipv4 })
			assert.True(t, ok, "laptop: dig %s", name)
		}
	})
	t.Run("another network over the same nodes is unreachable", func(t *testing.T) {
		assert.False(t, pingOK(lp.ns, o2.ipv4))
	})
	t.Run("status shows the access peer", func(t *testing.T) {
		var list []api.AccessPeer
		znetJSON(t, n1, &list, "access", "list", "shop")
		require.Len(t, list, 1)
		assert.Equal(t, "alice", list[0].Name)
		assert.Equal(t, cfg.Addresses[0].Addr(), list[0].IPv4)
		var st []api.NetworkStatus
		znetJSON(t, n1, &st, "status", "shop")
		var found bool
		for _, p := range st[0].Peers {
			if p.Name == "access/alice" {
				found = true
				assert.False(t, p.LastHandshake.IsZero(), "handshake")
				assert.Positive(t, p.RxBytes)
			}
		}
		assert.True(t, found, "alice in status")
	})
	t.Run("roaming: a new underlay address, traffic resumes", func(t *testing.T) {
		lp.setAddr(t, "198.18.0.200", "198.18.0.201")
		// Debian's wireguard-go (0.0.20220316) keeps sending from the address
		// it cached (sticky sockets) after that address is gone; clients
		// rebind on a network change, which a new port forces here. The node
		// then sees the same key from a new address and port.
		out, err := inNS(lp.ns, "wg", "set", lp.ifname, "listen-port", "0")
		require.NoError(t, err, out)
		ok := eventuallyPing(lp.ns, ws[n2.ID].ipv4)
		if !ok {
			out, _ := inNS(lp.ns, "wg", "show", lp.ifname)
			t.Logf("laptop:\n%s", out)
		}
		eps := wgShow(t, n1, "shop", "endpoints")
		assert.Contains(t, eps, "198.18.0.201:", "node 1 follows the laptop to its new address")
		assert.True(t, ok)
	})
	t.Run("remove cuts a running session off", func(t *testing.T) {
		znet(t, n1, "access", "remove", "shop", "alice")
		assert.False(t, pingOK(lp.ns, ws[n1.ID].ipv4))
		assert.False(t, pingOK(lp.ns, ws[n2.ID].ipv4))
		lp.down(t)
	})
	t.Run("a config made with --public-key works with the matching key", func(t *testing.T) {
		key, err := wgtypes.GeneratePrivateKey()
		require.NoError(t, err)
		conf := znet(t, n1, "access", "add", "shop", "bob", "--public-key", key.PublicKey().String())
		assert.NotContains(t, conf, "PrivateKey")
		lp.up(t, strings.Replace(conf, "[Interface]\n", "[Interface]\nPrivateKey = "+key.String()+"\n", 1))
		assert.True(t, eventuallyPing(lp.ns, ws[n3.ID].ipv4), "bob -> hidden node's workload")
		lp.down(t)
	})
	t.Run("a hidden node refuses access", func(t *testing.T) {
		_, errOut, err := znetRun(n3, "", "access", "add", "shop", "carol")
		require.Error(t, err)
		assert.Contains(t, errOut, "hidden")
	})
}

// eventuallyPing pings until it works or 10 s pass (a handshake, a roam).
func eventuallyPing(ns, dst string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if pingOK(ns, dst) {
			return true
		}
	}
	return false
}
