package daemon

import (
	"bytes"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/netconf"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
	"github.com/znet/znet/tap"
)

// vnetHdrLen is the virtio-net header before every frame on a tap made
// with IFF_VNET_HDR (the kernel's default size).
const vnetHdrLen = 10

// fakeVM is a test's stand-in for a VM monitor: it holds a tap's queue
// and sends and receives raw frames on it.
type fakeVM struct {
	f *os.File
}

// openVM attaches to the single queue of tap ifname in namespace nsPath.
func openVM(t *testing.T, nsPath, ifname string) *fakeVM {
	t.Helper()
	ns, err := namespaces.Open(nsPath)
	require.NoError(t, err)
	defer func() { _ = ns.Close() }()
	files, err := tap.Open(ns, ifname, 1)
	require.NoError(t, err)
	require.NoError(t, unix.SetNonblock(int(files[0].Fd()), true))
	t.Cleanup(func() { _ = files[0].Close() })
	// The tap has carrier once a queue is attached, and the bridge once
	// a port has; until the kernel's link watcher has seen that (up to a
	// second later) the bridge drops what it sends. A real guest retries
	// its first ARP; this one sends it once, so it waits.
	deadline := time.Now().Add(5 * time.Second)
	for _, name := range []string{ifname, bridgeName} {
		for linkIn(t, nsPath, name).Attrs().OperState != netlink.OperUp && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return &fakeVM{f: files[0]}
}

// send writes one Ethernet frame, as a guest would.
func (v *fakeVM) send(t *testing.T, frame []byte) {
	t.Helper()
	_, err := unix.Write(int(v.f.Fd()), append(make([]byte, vnetHdrLen), frame...))
	require.NoError(t, err)
}

// arpReply waits up to a second for an ARP reply that says ip is at some
// MAC, and returns that MAC (nil if none came). Other frames are skipped.
func (v *fakeVM) arpReply(t *testing.T, ip netip.Addr) net.HardwareAddr {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	buf := make([]byte, 2048)
	for time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(v.f.Fd()), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, 100); err != nil || n == 0 {
			continue
		}
		n, err := unix.Read(int(v.f.Fd()), buf)
		if err != nil || n < vnetHdrLen+42 {
			continue
		}
		f := buf[vnetHdrLen:n]
		if f[12] == 0x08 && f[13] == 0x06 && f[21] == 2 && bytes.Equal(f[28:32], ip.AsSlice()) {
			return net.HardwareAddr(bytes.Clone(f[22:28]))
		}
	}
	return nil
}

// arpFrame is an Ethernet broadcast ARP request from srcMAC (frame) with
// sender hardware address sha and sender IP spa, asking for tpa.
func arpFrame(srcMAC, sha net.HardwareAddr, spa, tpa netip.Addr) []byte {
	f := bytes.Repeat([]byte{0xff}, 6)
	f = append(f, srcMAC...)
	f = append(f, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1)
	f = append(f, sha...)
	f = append(f, spa.AsSlice()...)
	f = append(f, make([]byte, 6)...)
	return append(f, tpa.AsSlice()...)
}

// portState is what the bridge knows of one port: learning, and the MACs
// of its static FDB entries.
func portState(t *testing.T, nsPath, port string) (learning bool, static []string) {
	t.Helper()
	h := handleIn(t, nsPath)
	defer h.Close()
	l, err := h.LinkByName(port)
	require.NoError(t, err)
	pi, err := h.LinkGetProtinfo(l)
	require.NoError(t, err)
	fdb, err := h.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
	require.NoError(t, err)
	for _, e := range fdb {
		// The dump does not echo NTF_MASTER; "static" is the state.
		if e.State == netlink.NUD_NOARP {
			static = append(static, e.HardwareAddr.String())
		}
	}
	return pi.Learning, static
}

// linkIn returns link name in namespace nsPath.
func linkIn(t *testing.T, nsPath, name string) netlink.Link {
	t.Helper()
	h := handleIn(t, nsPath)
	defer h.Close()
	l, err := h.LinkByName(name)
	require.NoError(t, err)
	return l
}

// handleIn returns a netlink handle in namespace nsPath; the caller closes
// it (the namespace's fd is closed already).
func handleIn(t *testing.T, nsPath string) *netlink.Handle {
	t.Helper()
	ns, err := namespaces.Open(nsPath)
	require.NoError(t, err)
	defer func() { _ = ns.Close() }()
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	return h
}

// TestTapWorkloads attaches a VM's NIC and drives it from a fake monitor.
func TestTapWorkloads(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.use("shop")
	self := spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24")}
	shop := specOf("shop", 1, self)
	_, err := n.d.Apply(ctx, shop)
	require.NoError(t, err)
	sub := subnetsFor(t, shop, self)
	netNS := namespaces.Path(n.nsName("shop"))
	c := shop.Clone()
	c.SetDefaults()
	vmMAC := tap.MAC("shop", "vm1")
	name := tapIfName("vm1")
	var att api.Attachment

	step(t, "attach makes a pinned tap on the bridge", func(t *testing.T) {
		att, err = n.d.Attach(ctx, "shop", api.AttachRequest{Name: "vm1", Tap: true})
		require.NoError(t, err)
		ip := mustAddr("10.20.1.2")
		assert.Equal(t, api.Attachment{
			Kind: api.KindTap, Interface: name, NetNS: netNS, MAC: vmMAC.String(),
			IPv4: ip, IPv6: sub.Twin(ip), Gateway: sub.Gateway4, Gateway6: sub.Gateway6,
			DNS: []netip.Addr{sub.Gateway4, sub.Gateway6}, MTU: 1420,
			Subnet: sub.V4, Subnet6: sub.V6, Domain: "shop.internal", Queues: 1,
			Routes: []api.Route{{To: c.IPRange, Via: sub.Gateway4}, {To: c.IPv6Range, Via: sub.Gateway6}},
		}, att)

		l := linkIn(t, netNS, name)
		require.IsType(t, &netlink.Tuntap{}, l)
		assert.Equal(t, 1420, l.Attrs().MTU)
		assert.Equal(t, "fe"+vmMAC.String()[2:], l.Attrs().HardwareAddr.String(), "the tap's own MAC is not the guest's")
		br := linkIn(t, netNS, bridgeName)
		assert.Equal(t, bridgeMAC("shop"), br.Attrs().HardwareAddr, "the gateway's MAC is fixed, not a port's")
		assert.Equal(t, br.Attrs().Index, l.Attrs().MasterIndex)
		assert.NotZero(t, l.Attrs().Flags&net.FlagUp)
		learning, static := portState(t, netNS, name)
		assert.False(t, learning, "the bridge learns nothing on the port")
		assert.Equal(t, []string{vmMAC.String()}, static)
		assert.Contains(t, view(t, netNS).chains, "bridge znet port-"+name)

		got, err := n.d.Workload(ctx, "shop", "vm1")
		require.NoError(t, err)
		assert.Equal(t, att, got, "Workload answers what Attach did")
		wls, err := n.d.Workloads(ctx, "shop")
		require.NoError(t, err)
		assert.Equal(t, []api.Workload{{Name: "vm1", IPv4: ip, IPv6: sub.Twin(ip), NetNS: netNS, Interface: name,
			Kind: api.KindTap, MAC: vmMAC.String(), State: api.StateAttached}}, wls)
	})

	step(t, "the guest reaches the gateway from its own MAC only", func(t *testing.T) {
		vm := openVM(t, netNS, name)
		other := net.HardwareAddr{0x02, 0xee, 0, 0, 0, 1}
		gwMAC := linkIn(t, netNS, bridgeName).Attrs().HardwareAddr
		vm.send(t, arpFrame(vmMAC, vmMAC, att.IPv4, sub.Gateway4))
		assert.Equal(t, gwMAC, vm.arpReply(t, sub.Gateway4), "the gateway answers the guest")
		vm.send(t, arpFrame(other, other, att.IPv4, sub.Gateway4))
		assert.Nil(t, vm.arpReply(t, sub.Gateway4), "a frame from another MAC is dropped")
		vm.send(t, arpFrame(vmMAC, other, att.IPv4, sub.Gateway4))
		assert.Nil(t, vm.arpReply(t, sub.Gateway4), "ARP naming another MAC is dropped")

		_, err := tap.Open(namespacesOpen(t, netNS), name, 1)
		assert.ErrorIs(t, err, unix.EBUSY, "a single-queue tap has one monitor at a time")
	})

	step(t, "refused tap attaches leave nothing behind", func(t *testing.T) {
		links := linkNames(t, netNS)
		tests := []struct {
			name   string
			req    api.AttachRequest
			status int
			field  string
		}{
			{"tap and netns", api.AttachRequest{Name: "vm2", Tap: true, NetNS: "/run/netns/x"}, http.StatusBadRequest, "netns"},
			{"tap and ifname", api.AttachRequest{Name: "vm2", Tap: true, IfName: "eth0"}, http.StatusBadRequest, "ifname"},
			{"multicast mac", api.AttachRequest{Name: "vm2", Tap: true, MAC: "01:00:5e:00:00:01"}, http.StatusBadRequest, "mac"},
			{"not a mac", api.AttachRequest{Name: "vm2", Tap: true, MAC: "02:00"}, http.StatusBadRequest, "mac"},
			{"another workload's mac", api.AttachRequest{Name: "vm2", Tap: true, MAC: vmMAC.String()}, http.StatusConflict, "mac"},
			{"too many queues", api.AttachRequest{Name: "vm2", Tap: true, Queues: tap.MaxQueues + 1}, http.StatusBadRequest, "queues"},
			{"mac without tap", api.AttachRequest{Name: "vm2", NetNS: netNS, MAC: "02:00:00:00:00:09"}, http.StatusBadRequest, "mac"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := n.d.Attach(ctx, "shop", tt.req)
				requireAPIError(t, err, tt.status, tt.field)
			})
		}
		assert.Equal(t, links, linkNames(t, netNS))
		assert.Equal(t, map[netip.Addr]string{att.IPv4: "workload/vm1"}, n.allocated(t, "shop"))
	})

	step(t, "a multi-queue tap opens with all its queues", func(t *testing.T) {
		a, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "vm2", Tap: true, Queues: 4, MAC: "52:54:00:12:34:56"})
		require.NoError(t, err)
		assert.Equal(t, "52:54:00:12:34:56", a.MAC)
		assert.Equal(t, 4, a.Queues)
		files, err := tap.Open(namespacesOpen(t, netNS), a.Interface, 4)
		require.NoError(t, err)
		for _, f := range files {
			assert.NoError(t, f.Close())
		}
		require.NoError(t, n.d.Detach(ctx, "shop", "vm2"))
	})

	step(t, "a restarted daemon adopts the tap and removes a stray one", func(t *testing.T) {
		index := linkIn(t, netNS, name).Attrs().Index
		// An attach that crashed after it made its tap, before it saved.
		stray := tapIfName("crashed")
		require.NoError(t, tap.Create(namespacesOpen(t, netNS), stray, 1))
		n.restart(t)
		require.NoError(t, n.d.Recover(ctx))
		assert.Equal(t, index, linkIn(t, netNS, name).Attrs().Index, "the same device")
		assert.NotContains(t, linkNames(t, netNS), stray)
	})

	step(t, "after a reboot the tap is made again", func(t *testing.T) {
		killAndWait(t, n.real.PID(n.dev("shop")))
		n.stop(t)
		deleteAndWait(t, n.nsName("shop"))
		n.start(t)
		require.NoError(t, n.d.Recover(ctx))
		l := linkIn(t, netNS, name)
		assert.Equal(t, "fe"+vmMAC.String()[2:], l.Attrs().HardwareAddr.String())
		learning, static := portState(t, netNS, name)
		assert.False(t, learning)
		assert.Equal(t, []string{vmMAC.String()}, static)
		vm := openVM(t, netNS, name)
		vm.send(t, arpFrame(vmMAC, vmMAC, att.IPv4, sub.Gateway4))
		assert.NotNil(t, vm.arpReply(t, sub.Gateway4))
	})

	step(t, "detach removes the tap", func(t *testing.T) {
		require.NoError(t, n.d.Detach(ctx, "shop", "vm1"))
		assert.NotContains(t, linkNames(t, netNS), name)
		assert.NotContains(t, view(t, netNS).chains, "bridge znet port-"+name)
		_, err := n.d.Workload(ctx, "shop", "vm1")
		requireAPIError(t, err, http.StatusNotFound, "workload")
	})

	step(t, "deleting the network removes a tap a VM holds", func(t *testing.T) {
		a, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "vm3", Tap: true})
		require.NoError(t, err)
		// A queue's socket holds the namespace: without the tap deleted,
		// both would live on behind the VM, out of anyone's sight.
		vm := openVM(t, netNS, a.Interface)
		require.NoError(t, n.d.DeleteNetwork(ctx, "shop", true))
		ifr, err := unix.NewIfreq("")
		require.NoError(t, err)
		err = unix.IoctlIfreq(int(vm.f.Fd()), unix.TUNGETIFF, ifr)
		assert.ErrorIs(t, err, unix.EBADFD, "the VM's queue leads nowhere")
	})
}

// namespacesOpen opens nsPath for the rest of the test.
func namespacesOpen(t *testing.T, nsPath string) netns.NsHandle {
	t.Helper()
	ns, err := namespaces.Open(nsPath)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ns.Close() })
	return ns
}

// TestMACTheft checks that a namespace workload that takes another
// workload's MAC gets nothing through and diverts nothing.
func TestMACTheft(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.use("shop")
	self := spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24")}
	_, err := n.d.Apply(ctx, specOf("shop", 1, self))
	require.NoError(t, err)
	netNS := n.nsName("shop")
	thief, victim := n.newWorkloadNS(t), n.newWorkloadNS(t)
	ta, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "thief", NetNS: namespaces.Path(thief)})
	require.NoError(t, err)
	va, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "victim", NetNS: namespaces.Path(victim)})
	require.NoError(t, err)
	ping := func(ns string, dst netip.Addr) bool {
		return exec.Command("ip", "netns", "exec", ns, "ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1", dst.String()).Run() == nil
	}
	require.True(t, ping(thief, va.IPv4), "before the theft")
	require.True(t, ping(netNS, va.IPv4))

	out, err := exec.Command("ip", "-n", thief, "link", "set", "znet0", "address", va.MAC).CombinedOutput()
	require.NoError(t, err, "%s", out)
	// The thief announces the stolen MAC as loudly as it can.
	_ = exec.Command("ip", "netns", "exec", thief, "ping", "-c", "3", "-i", "0.2", "-W", "1", "-b", "10.20.1.255").Run()

	assert.False(t, ping(thief, va.IPv4), "the thief gets nothing through")
	assert.False(t, ping(thief, ta.Gateway), "not even to the gateway")
	// The gateway first: the victim's own traffic would teach an
	// unpinned bridge its port again.
	assert.True(t, ping(netNS, va.IPv4), "the gateway still reaches the victim")
	assert.True(t, ping(victim, va.Gateway), "the victim keeps its traffic")
	_, static := portState(t, namespaces.Path(netNS), hostIfName("victim"))
	assert.Equal(t, []string{va.MAC}, static, "the victim's MAC stays on the victim's port")
	_, static = portState(t, namespaces.Path(netNS), hostIfName("thief"))
	assert.Equal(t, []string{ta.MAC}, static, "nothing moved to the thief's port")
}

// TestMACBackfill restarts a node whose state has a veth workload from
// before MACs were recorded: recovery records the MAC the workload has and
// pins its port to it.
func TestMACBackfill(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.use("shop")
	self := spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24")}
	_, err := n.d.Apply(ctx, specOf("shop", 1, self))
	require.NoError(t, err)
	ws := n.newWorkloadNS(t)
	_, err = n.d.Attach(ctx, "shop", api.AttachRequest{Name: "old", NetNS: namespaces.Path(ws)})
	require.NoError(t, err)
	// As an old znetd left it: the kernel's MAC, none in the state.
	const mac = "02:42:ac:11:00:07"
	out, err := exec.Command("ip", "-n", ws, "link", "set", "znet0", "address", mac).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, n.store.Update(func(tx *store.Tx) error {
		w, err := tx.Workload("shop", "old")
		if err != nil {
			return err
		}
		w.MAC = ""
		return tx.PutWorkload(w)
	}))

	n.restart(t)
	require.NoError(t, n.d.Recover(ctx))
	wls, err := n.d.Workloads(ctx, "shop")
	require.NoError(t, err)
	require.Len(t, wls, 1)
	assert.Equal(t, mac, wls[0].MAC, "recorded")
	_, static := portState(t, namespaces.Path(n.nsName("shop")), hostIfName("old"))
	assert.Equal(t, []string{mac}, static, "pinned on the bridge")
	assert.Contains(t, nftRuleset(t, n.nsName("shop")), "ether saddr != "+mac+" drop", "pinned in the firewall")
}

// nftRuleset returns `nft list ruleset` of namespace ns.
func nftRuleset(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "ruleset").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// TestGatewayMACChangeIsAnnounced changes the bridge's MAC, as the first
// start after an upgrade does, and checks that a workload's neighbour
// entries for both gateways follow at once.
func TestGatewayMACChangeIsAnnounced(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.use("shop")
	self := spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24")}
	_, err := n.d.Apply(ctx, specOf("shop", 1, self))
	require.NoError(t, err)
	ws := n.newWorkloadNS(t)
	a, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "web", NetNS: namespaces.Path(ws)})
	require.NoError(t, err)
	gateways := []netip.Addr{a.Gateway, a.Gateway6}
	for _, gw := range gateways {
		out, err := exec.Command("ip", "netns", "exec", ws, "ping", "-c", "1", "-W", "2", gw.String()).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Equal(t, bridgeMAC("shop"), gatewayNeighbour(t, ws, gw))
	}

	other := net.HardwareAddr{0x02, 0x99, 0, 0, 0, 1}
	k, err := netconf.Kernel{}.Open(n.nsName("shop"), false)
	require.NoError(t, err)
	defer func() { _ = k.Close() }()
	br, err := k.Link(bridgeName)
	require.NoError(t, err)
	keep := []netip.Prefix{netip.PrefixFrom(a.Gateway, a.Subnet.Bits()), netip.PrefixFrom(a.Gateway6, a.Subnet6.Bits())}
	_, err = k.SetLink(netconf.Link{Name: bridgeName, MTU: br.MTU, MAC: other, Addrs: keep})
	require.NoError(t, err)
	for _, gw := range gateways {
		deadline := time.Now().Add(time.Second)
		for !bytes.Equal(gatewayNeighbour(t, ws, gw), other) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		assert.Equal(t, other, gatewayNeighbour(t, ws, gw), "the workload's entry for %s", gw)
	}
}

// gatewayNeighbour returns the MAC namespace ws has for gw on znet0.
func gatewayNeighbour(t *testing.T, ws string, gw netip.Addr) net.HardwareAddr {
	t.Helper()
	h := handleIn(t, namespaces.Path(ws))
	defer h.Close()
	l, err := h.LinkByName("znet0")
	require.NoError(t, err)
	family := netlink.FAMILY_V4
	if gw.Is6() {
		family = netlink.FAMILY_V6
	}
	neighs, err := h.NeighList(l.Attrs().Index, family)
	require.NoError(t, err)
	for _, e := range neighs {
		if ip, ok := netip.AddrFromSlice(e.IP); ok && ip.Unmap() == gw {
			return e.HardwareAddr
		}
	}
	return nil
}
