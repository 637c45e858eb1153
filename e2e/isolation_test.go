package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/access"
	"github.com/znet/znet/api"
	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
)

// probePort is where every matrix listener waits, over TCP and UDP.
const probePort = 7777

// probeTimeout bounds one probe; a blocked pair costs this much.
const probeTimeout = 400 * time.Millisecond

// endpoint is one source or destination of the matrix: a workload or an
// access peer (net is the index of its network, -1 for none).
type endpoint struct {
	name string
	net  int
	node int // index in the lab of the workload's node
	ns   string
	addr string
}

// listener answers TCP and UDP probes on one address inside a namespace
// with its name, and keeps every UDP payload it was sent.
type listener struct {
	id  string
	tcp net.Listener
	udp *net.UDPConn

	mu   sync.Mutex
	seen map[string]bool
}

// listen starts a listener on addr:probePort inside ns; the test stops it.
func listen(t *testing.T, ns, addr, id string) *listener {
	t.Helper()
	ln := &listener{id: id, seen: map[string]bool{}}
	hostPort := net.JoinHostPort(addr, fmt.Sprint(probePort))
	err := namespaces.DoPath(ns, func() error {
		var err error
		if ln.tcp, err = net.Listen("tcp", hostPort); err != nil {
			return fmt.Errorf("listening on tcp %s: %w", hostPort, err)
		}
		pc, err := net.ListenPacket("udp", hostPort)
		if err != nil {
			_ = ln.tcp.Close()
			return fmt.Errorf("listening on udp %s: %w", hostPort, err)
		}
		ln.udp = pc.(*net.UDPConn)
		return nil
	})
	require.NoError(t, err, "listener in %s", ns)
	t.Cleanup(func() { _ = ln.tcp.Close(); _ = ln.udp.Close() })
	go func() {
		for {
			c, err := ln.tcp.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(id + "\n"))
			_ = c.Close()
		}
	}()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := ln.udp.ReadFromUDP(buf)
			if err != nil {
				return
			}
			ln.mu.Lock()
			ln.seen[string(buf[:n])] = true
			ln.mu.Unlock()
			_, _ = ln.udp.WriteToUDP([]byte(id), from)
		}
	}()
	return ln
}

// got reports whether the listener received payload over UDP.
func (ln *listener) got(payload string) bool {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	return ln.seen[payload]
}

// probeTCP connects from ns to dst and returns the name the far side
// answered with ("" when nothing answered).
func probeTCP(ns, dst string, timeout time.Duration) string {
	var answer string
	// Any failure (no route, refused, timeout) is the probe's outcome: answer stays empty.
	_ = namespaces.DoPath(ns, func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(dst, fmt.Sprint(probePort)), timeout)
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		_ = c.SetDeadline(time.Now().Add(timeout))
		line, err := bufio.NewReader(c).ReadString('\n')
		answer = strings.TrimSpace(line)
		return err
	})
	return answer
}

// sendUDP sends payload from ns (from src when it is set) to dst and
// returns the name the far side answered with ("" when nothing answered).
func sendUDP(ns, src, dst, payload string, timeout time.Duration) string {
	var answer string
	// Any failure (no route, refused, timeout) is the probe's outcome: answer stays empty.
	_ = namespaces.DoPath(ns, func() error {
		var laddr *net.UDPAddr
		if src != "" {
			laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(src), 0))
		}
		raddr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(dst), probePort))
		c, err := net.DialUDP("udp", laddr, raddr)
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		_ = c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write([]byte(payload)); err != nil {
			return err
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		answer = string(buf[:n])
		return err
	})
	return answer
}

// probeICMP pings dst once from ns (from src when it is set).
func probeICMP(ns, src, dst string, timeout time.Duration) bool {
	args := []string{"ping", "-q", "-c", "1", "-W", fmt.Sprintf("%.1f", timeout.Seconds())}
	if src != "" {
		args = append(args, "-I", src)
	}
	_, err := inNS(ns, append(args, dst)...)
	return err == nil
}

// probe is one cell of a matrix: from src to dst over proto.
type probe struct {
	src, dst endpoint
	proto    string
	want     bool
}

// reached runs the probe once and reports whether dst (and only dst) answered.
func (p probe) reached(timeout time.Duration) (bool, string) {
	switch p.proto {
	case "icmp":
		return probeICMP(p.src.ns, "", p.dst.addr, timeout), ""
	case "tcp":
		got := probeTCP(p.src.ns, p.dst.addr, timeout)
		return got != "", got
	default:
		got := sendUDP(p.src.ns, "", p.dst.addr, "probe from "+p.src.name, timeout)
		return got != "", got
	}
}

// runMatrix runs every probe with a bounded pool and returns a line for
// each one whose outcome differs from what it wants. A probe that should
// pass is tried again a few times (a tunnel's first packets under load).
func runMatrix(probes []probe, workers int) []string {
	var (
		mu   sync.Mutex
		bad  []string
		jobs = make(chan probe)
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				ok, who := p.reached(probeTimeout)
				for try := 0; p.want && !ok && try < 4; try++ {
					ok, who = p.reached(time.Second)
				}
				var msg string
				switch {
				case ok && !p.want:
					msg = fmt.Sprintf("UNEXPECTED PASS  %-4s %s (%s) -> %s (%s)", p.proto, p.src.name, p.src.addr, p.dst.name, p.dst.addr)
					if who != "" {
						msg += fmt.Sprintf(" answered by %q", who)
					}
				case !ok && p.want:
					msg = fmt.Sprintf("UNEXPECTED BLOCK %-4s %s (%s) -> %s (%s)", p.proto, p.src.name, p.src.addr, p.dst.name, p.dst.addr)
				case ok && who != "" && who != p.dst.name:
					msg = fmt.Sprintf("WRONG PEER       %-4s %s (%s) -> %s (%s) answered by %q", p.proto, p.src.name, p.src.addr, p.dst.name, p.dst.addr, who)
				}
				if msg != "" {
					mu.Lock()
					bad = append(bad, msg)
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range probes {
		jobs <- p
	}
	close(jobs)
	wg.Wait()
	sort.Strings(bad)
	return bad
}

// networkStatus returns node's status of network.
func networkStatus(t *testing.T, node lab.Node, network string) api.NetworkStatus {
	t.Helper()
	var st []api.NetworkStatus
	znetJSON(t, node, &st, "status", network)
	require.Len(t, st, 1)
	return st[0]
}

// deviceWith returns the link in ns that holds addr.
func deviceWith(t *testing.T, ns, addr string) string {
	t.Helper()
	out, err := inNS(ns, "ip", "-o", "-4", "addr", "show")
	require.NoError(t, err, out)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && strings.HasPrefix(f[3], addr+"/") {
			return f[1]
		}
	}
	require.FailNow(t, "no link holds "+addr, out)
	return ""
}

// TestIsolationMatrix covers issue 7 item 6: three networks with one range
// over three nodes (the third hidden), two workloads per network per node,
// a tap workload per network (issue 13) and an access peer per network; every source against every destination
// over ICMP, TCP and UDP, and the ways out of a network that must be shut.
func TestIsolationMatrix(t *testing.T) {
	l := newLab(t, 3)
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	// A router to a simulated internet, so that the one egress network
	// (iso2) has a way out whose limits the matrix checks.
	wld := newWorld(t, l)
	const ipRange = "10.80.0.0/16"
	const egressNet = 2
	nets := []string{"iso0", "iso1", "iso2"}
	for i, nw := range nets {
		if i == egressNet {
			egressDeploy(t, l, nw, ipRange, true, n3.ID)
			continue
		}
		deploy(t, l, deployment(t, nw, ipRange, l.Nodes, n3.ID))
	}

	// status[net][node index]
	status := make([][]api.NetworkStatus, len(nets))
	var (
		workloads []endpoint
		laptops   []endpoint
		byNode    = map[string][]endpoint{} // node id -> its workloads
	)
	for i, nw := range nets {
		for k, n := range l.Nodes {
			st := networkStatus(t, n, nw)
			status[i] = append(status[i], st)
			for j := range 2 {
				// Every address differs from every other network's, so a
				// pass can only mean the address's owner was reached.
				addr := ipIn(st.Gateway.String(), 10+10*i+j)
				name := fmt.Sprintf("%s-n%d-w%d", nw, k+1, j)
				a := attach(t, n, nw, name, "--ipv4", addr)
				require.Equal(t, addr, a.ipv4)
				e := endpoint{name: name, net: i, node: k, ns: a.ns, addr: a.ipv4}
				workloads = append(workloads, e)
				byNode[n.ID] = append(byNode[n.ID], e)
			}
		}
	}
	// A VM's NIC per network, on node 2, played by a namespace behind a
	// tap (see attachTapGuest): taps are isolated like veths.
	for i, nw := range nets {
		addr := ipIn(status[i][1].Gateway.String(), 10+10*i+5)
		name := nw + "-n2-tap"
		a := attachTapGuest(t, n2, nw, name, "--ipv4", addr)
		require.Equal(t, addr, a.ipv4)
		workloads = append(workloads, endpoint{name: name, net: i, node: 1, ns: a.ns, addr: a.ipv4})
	}
	for i, nw := range nets {
		// i placeholder peers first, so each network's laptop gets an
		// address no other network's laptop has.
		for k := range i {
			key, err := wgtypes.GeneratePrivateKey()
			require.NoError(t, err)
			znet(t, n1, "access", "add", nw, fmt.Sprintf("pad%d", k), "--public-key", key.PublicKey().String())
		}
		lp := newLaptop(t, l, fmt.Sprintf("198.18.0.%d", 201+i))
		conf := znet(t, n1, "access", "add", nw, "laptop")
		cfg, err := access.Parse(conf)
		require.NoError(t, err)
		lp.up(t, conf)
		laptops = append(laptops, endpoint{name: nw + "-laptop", net: i, ns: lp.ns, addr: cfg.Addresses[0].Addr().String()})
	}
	all := append(append([]endpoint{}, workloads...), laptops...)
	addrs := map[string]string{}
	for _, e := range all {
		require.Empty(t, addrs[e.addr], "%s and %s share %s", addrs[e.addr], e.name, e.addr)
		addrs[e.addr] = e.name
	}
	listeners := map[string]*listener{}
	for _, e := range all {
		listeners[e.name] = listen(t, e.ns, e.addr, e.name)
	}
	// Workloads get default routes, so that packets for the underlay and
	// the internet really leave them and meet the node's rules.
	for _, w := range workloads {
		st := status[w.net][w.node]
		out, err := inNS(w.ns, "ip", "route", "replace", "default", "via", st.Gateway.String())
		require.NoError(t, err, out)
		out, err = inNS(w.ns, "ip", "-6", "route", "add", "default", "via", st.Gateway6.String())
		require.NoError(t, err, out)
	}

	// Warm up every tunnel (and show the mesh works) before timing probes.
	for _, a := range all {
		for _, b := range all {
			if a.net != b.net || a.name == b.name || strings.HasSuffix(a.name, "-w1") || strings.HasSuffix(b.name, "-w1") ||
				strings.HasSuffix(b.name, "-laptop") { // nothing opens a connection to an access peer
				continue
			}
			ok, took := within(15*time.Second, func() bool { return probeICMP(a.ns, "", b.addr, time.Second) })
			require.True(t, ok, "warm-up: %s -> %s (%s)", a.name, b.name, b.addr)
			if took > 2*time.Second {
				t.Logf("warm-up: %s -> %s answered only after %s", a.name, b.name, took)
			}
		}
	}

	t.Run("every source against every destination over ICMP, TCP and UDP", func(t *testing.T) {
		var probes []probe
		for _, src := range all {
			for _, dst := range all {
				if src.name == dst.name {
					continue
				}
				for _, proto := range []string{"icmp", "tcp", "udp"} {
					// Access peers are clients: nothing opens a
					// connection to one, even from its own network.
					toLaptop := strings.HasSuffix(dst.name, "-laptop")
					probes = append(probes, probe{src: src, dst: dst, proto: proto, want: src.net == dst.net && !toLaptop})
				}
			}
		}
		start := time.Now()
		bad := runMatrix(probes, 24)
		passes := 0
		for _, p := range probes {
			if p.want {
				passes++
			}
		}
		t.Logf("matrix: %d endpoints, %d probes (%d should pass, %d should be blocked) in %s",
			len(all), len(probes), passes, len(probes)-passes, time.Since(start).Round(time.Millisecond))
		assert.Zero(t, len(bad), "unexpected outcomes:\n%s", strings.Join(bad, "\n"))
	})

	t.Run("workloads reach no underlay, no internet, no other network's gateway", func(t *testing.T) {
		// Only the egress network's workloads reach the internet host.
		inet := endpoint{name: "internet-host", net: egressNet, ns: wld.inet, addr: inetHost}
		listen(t, wld.inet, inetHost, inet.name)
		server := newLaptop(t, l, "198.18.0.250")
		outside := []endpoint{{name: "internet-server", net: -1, ns: server.ns, addr: "198.18.0.250"}}
		listen(t, server.ns, "198.18.0.250", "internet-server")
		for _, n := range l.Nodes {
			e := endpoint{name: "underlay-" + n.ID, net: -1, ns: n.NetNS, addr: n.Underlay.String()}
			listen(t, n.NetNS, e.addr, e.name)
			outside = append(outside, e)
		}
		var (
			probes   []probe
			gateways int
		)
		for _, w := range workloads {
			dsts := append([]endpoint{}, outside...)
			for i := range nets {
				for k := range l.Nodes {
					gw6 := status[i][k].Gateway6
					if i == w.net || !gw6.IsValid() || gw6 == status[w.net][k].Gateway6 {
						continue // the same address as one of its own gateways
					}
					dsts = append(dsts, endpoint{name: fmt.Sprintf("%s-gateway6-n%d", nets[i], k+1), net: -1, addr: gw6.String()})
					gateways += 3
				}
			}
			for _, dst := range append(dsts, inet) {
				for _, proto := range []string{"icmp", "tcp", "udp"} {
					probes = append(probes, probe{src: w, dst: dst, proto: proto, want: dst == inet && w.net == egressNet})
				}
			}
		}
		start := time.Now()
		bad := runMatrix(probes, 24)
		t.Logf("ways out: %d probes (%d to other networks' IPv6 gateways) in %s", len(probes), gateways, time.Since(start).Round(time.Millisecond))
		assert.Zero(t, len(bad), "unexpected outcomes:\n%s", strings.Join(bad, "\n"))
		// The probes could have passed: the server answers on the internet.
		lp := laptops[0]
		assert.True(t, probeICMP(lp.ns, "", "198.18.0.250", time.Second), "the internet server answers a laptop")
		assert.Equal(t, "internet-server", probeTCP(lp.ns, "198.18.0.250", time.Second))
	})

	t.Run("a workload spoofing another address gets nothing through", func(t *testing.T) {
		ws := byNode[n1.ID] // iso0's two workloads on node 1 come first
		spoofer, neighbour := ws[0], ws[1]
		remote := byNode[n2.ID][0]
		hidden := byNode[n3.ID][0]
		require.Equal(t, 0, spoofer.net)
		require.Equal(t, spoofer.net, neighbour.net)
		require.Equal(t, spoofer.net, remote.net)
		require.Equal(t, spoofer.net, hidden.net)
		// The check can fail: from its own address the token arrives.
		token := "real-" + randName()
		assert.Equal(t, remote.name, sendUDP(spoofer.ns, spoofer.addr, remote.addr, token, time.Second))
		assert.True(t, listeners[remote.name].got(token))
		for _, spoof := range []string{ipIn(spoofer.addr, 99), neighbour.addr, laptops[0].addr} {
			out, err := inNS(spoofer.ns, "ip", "addr", "add", spoof+"/32", "dev", "znet0")
			require.NoError(t, err, out)
			for _, dst := range []endpoint{neighbour, remote, hidden, laptops[0]} {
				if dst.addr == spoof {
					continue
				}
				token := "spoof-" + randName()
				sendUDP(spoofer.ns, spoof, dst.addr, token, probeTimeout)
				if spoof != neighbour.addr && spoof != laptops[0].addr {
					// Answers to a free address would come back to the spoofer.
					assert.False(t, probeICMP(spoofer.ns, spoof, dst.addr, probeTimeout), "ping from spoofed %s to %s", spoof, dst.name)
				}
				time.Sleep(100 * time.Millisecond)
				assert.False(t, listeners[dst.name].got(token), "%s got a datagram from spoofed %s", dst.name, spoof)
			}
			out, err = inNS(spoofer.ns, "ip", "addr", "del", spoof+"/32", "dev", "znet0")
			require.NoError(t, err, out)
		}
		assert.True(t, probeICMP(spoofer.ns, "", remote.addr, time.Second), "the real address still works")
	})

	t.Run("a node sending from outside its subnet is dropped by cryptokey routing", func(t *testing.T) {
		ns2 := namespaces.Name(n2.ID, nets[0])
		bridge := deviceWith(t, ns2, status[0][1].Gateway.String())
		target := byNode[n1.ID][0]
		require.Equal(t, 0, target.net)
		forged := ipIn(status[0][0].Gateway.String(), 201) // in node 1's subnet
		out, err := inNS(ns2, "ip", "addr", "add", forged+"/32", "dev", bridge)
		require.NoError(t, err, out)
		defer func() { _, _ = inNS(ns2, "ip", "addr", "del", forged+"/32", "dev", bridge) }()
		// The datagrams must leave node 2 through the tunnel to node 1 (its
		// byte counter grows by at least their size), so that it is node 1's
		// WireGuard that drops them.
		txBefore := txTo(t, ns2, status[0][1].Interface, status[0][0].PublicKey)
		for range 10 {
			token := "forged-" + randName() + strings.Repeat("x", 1000)
			sendUDP(ns2, forged, target.addr, token, probeTimeout)
			time.Sleep(100 * time.Millisecond)
			assert.False(t, listeners[target.name].got(token), "node 1's workload got a datagram node 2 sent from %s", forged)
		}
		assert.False(t, probeICMP(ns2, forged, target.addr, probeTimeout), "ping from %s in %s", forged, ns2)
		sent := txTo(t, ns2, status[0][1].Interface, status[0][0].PublicKey) - txBefore
		assert.GreaterOrEqual(t, sent, int64(10*1000), "node 2 sent only %d bytes to node 1: the datagrams never left it", sent)
		t.Logf("node 2 sent %d bytes to node 1 from %s; none arrived", sent, forged)
	})
}

// txTo returns the bytes the WireGuard device iface in ns sent to peer key.
func txTo(t *testing.T, ns, iface, key string) int64 {
	t.Helper()
	out, err := inNS(ns, "wg", "show", iface, "transfer")
	require.NoError(t, err, out)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == key {
			var tx int64
			_, err := fmt.Sscan(f[2], &tx)
			require.NoError(t, err, line)
			return tx
		}
	}
	require.FailNow(t, "no peer "+key, out)
	return 0
}
