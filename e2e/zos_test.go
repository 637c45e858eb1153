package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/api"
	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/zos"
)

// The JSON of a zos network workload, written here from its field list.
type (
	zosWorkload struct {
		Version uint64  `json:"version"`
		Name    string  `json:"name"`
		Type    string  `json:"type"`
		Data    zosData `json:"data"`
	}
	zosData struct {
		IPRange    string    `json:"ip_range"`
		Subnet     string    `json:"subnet"`
		PrivateKey string    `json:"wireguard_private_key"`
		Port       int       `json:"wireguard_listen_port"`
		Peers      []zosPeer `json:"peers"`
		Mycelium   *struct{} `json:"mycelium"`
	}
	zosPeer struct {
		Subnet     string   `json:"subnet"`
		PublicKey  string   `json:"wireguard_public_key"`
		AllowedIPs []string `json:"allowed_ips"`
		Endpoint   string   `json:"endpoint"`
	}
)

// gridMember is one node of a network as the grid client plans it.
type gridMember struct {
	node   lab.Node
	hidden bool
	key    wgtypes.Key
	port   int
}

// gridPlan is a network planned as the grid client plans it: node i gets
// 10.<o2>.<2+i>.0/24 and the link address 100.64.<o2>.<2+i>; the first
// public node is the access node, relaying for the hidden nodes and the
// user, who gets the /24 after the nodes'.
type gridPlan struct {
	name    string
	o2      int
	members []gridMember
	user    wgtypes.Key
}

func (p *gridPlan) ipRange() string     { return fmt.Sprintf("10.%d.0.0/16", p.o2) }
func (p *gridPlan) subnet(i int) string { return fmt.Sprintf("10.%d.%d.0/24", p.o2, 2+i) }
func (p *gridPlan) link(i int) string   { return fmt.Sprintf("100.64.%d.%d", p.o2, 2+i) }
func (p *gridPlan) endpoint(i int) string {
	return fmt.Sprintf("%s:%d", p.members[i].node.Underlay, p.members[i].port)
}
func (p *gridPlan) userIndex() int { return len(p.members) }

func (p *gridPlan) access() int {
	for i, m := range p.members {
		if !m.hidden {
			return i
		}
	}
	return -1
}

// own returns what a peer entry for member (or the user) i carries of i.
func (p *gridPlan) own(i int) []string { return []string{p.subnet(i), p.link(i) + "/32"} }

// workload returns member i's workload at version.
func (p *gridPlan) workload(i int, version uint64) zosWorkload {
	m, acc := p.members[i], p.access()
	w := zosWorkload{Version: version, Name: p.name, Type: "network", Data: zosData{
		IPRange: p.ipRange(), Subnet: p.subnet(i), PrivateKey: m.key.String(), Port: m.port, Peers: []zosPeer{},
	}}
	if m.hidden {
		// One peer, the access node, carrying the hidden node's own subnet
		// (as the client does).
		w.Data.Peers = append(w.Data.Peers, zosPeer{Subnet: p.subnet(i), PublicKey: p.members[acc].key.PublicKey().String(),
			AllowedIPs: []string{p.ipRange(), "100.64.0.0/16"}, Endpoint: p.endpoint(acc)})
		return w
	}
	for j, q := range p.members {
		if j == i || q.hidden {
			continue
		}
		allowed := p.own(j)
		if j == acc {
			allowed = append(allowed, p.relayed()...)
		}
		w.Data.Peers = append(w.Data.Peers, zosPeer{Subnet: p.subnet(j), PublicKey: q.key.PublicKey().String(), AllowedIPs: allowed, Endpoint: p.endpoint(j)})
	}
	if i == acc {
		for j, q := range p.members {
			if q.hidden {
				w.Data.Peers = append(w.Data.Peers, zosPeer{Subnet: p.subnet(j), PublicKey: q.key.PublicKey().String(), AllowedIPs: p.own(j)})
			}
		}
		u := p.userIndex()
		w.Data.Peers = append(w.Data.Peers, zosPeer{Subnet: p.subnet(u), PublicKey: p.user.PublicKey().String(), AllowedIPs: p.own(u)})
	}
	return w
}

// relayed is what the access node carries for the others: the hidden
// nodes' and the user's subnets and link addresses.
func (p *gridPlan) relayed() []string {
	var out []string
	for j, q := range p.members {
		if q.hidden {
			out = append(out, p.own(j)...)
		}
	}
	return append(out, p.own(p.userIndex())...)
}

// userConfig is exactly the grid client's wg-quick config for the user.
func (p *gridPlan) userConfig() string {
	acc := p.access()
	return fmt.Sprintf("[Interface]\nAddress = %s\nPrivateKey = %s\n[Peer]\nPublicKey = %s\nAllowedIPs = %s, 100.64.0.0/16\nPersistentKeepalive = 25\nEndpoint = %s\n",
		p.link(p.userIndex()), p.user, p.members[acc].key.PublicKey(), p.ipRange(), p.endpoint(acc))
}

func newKey(t *testing.T) wgtypes.Key {
	t.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	require.NoError(t, err)
	return k
}

// zosApply sends member i's workload at version and returns the CLI's
// answer, its stderr and error.
func zosApply(p *gridPlan, i int, version uint64) (string, string, error) {
	b, err := json.Marshal(p.workload(i, version))
	if err != nil {
		return "", "", err
	}
	return znetRun(p.members[i].node, string(b), "zos", "apply", "--twin", "42", "-f", "-", "--json")
}

// TestZos covers issue 14: three nodes (the third hidden) realize zos
// network workloads planned as the grid client plans them.
func TestZos(t *testing.T) {
	l := newLabWith(t, lab.Config{Nodes: 3, AllowImportedKeys: true})
	p := &gridPlan{name: "my_Net", o2: 80, user: newKey(t)}
	for i, n := range l.Nodes {
		p.members = append(p.members, gridMember{node: n, hidden: i == 2, key: newKey(t), port: 30001 + i})
	}
	network := zos.NetworkName(42, p.name)
	var outputs []string

	ws := make([]attached, len(l.Nodes))
	for i, n := range l.Nodes {
		out, errOut, err := zosApply(p, i, 0)
		require.NoError(t, err, errOut)
		outputs = append(outputs, out)
		var res api.ZosNetwork
		require.NoError(t, json.Unmarshal([]byte(out), &res))
		assert.Equal(t, api.ZosNetwork{Network: network, Twin: 42, Name: p.name, Version: 0}, res)
		ws[i] = attach(t, n, network, fmt.Sprintf("web%d", i+1))
	}
	// A zmachine's interface {"network": "my_Net", "ip": "10.80.3.50"}, as
	// a namespace workload (tap workloads are another issue's).
	vm := attached{ns: workloadNS(t, "vm")}
	var att api.Attachment
	znetJSON(t, l.Nodes[1], &att, "zos", "attach", "--twin", "42", p.name, "vm", "--netns", "/run/netns/"+vm.ns, "--ip", "10.80.3.50")
	require.Equal(t, "10.80.3.50", att.IPv4.String())
	vm.ipv4, vm.ipv6 = att.IPv4.String(), att.IPv6.String()
	ws = append(ws, vm)

	t.Run("every workload pair talks, the hidden node's through the access node", func(t *testing.T) {
		for i := range ws {
			for j := range ws {
				if i != j {
					assert.True(t, eventuallyPing(ws[i].ns, ws[j].ipv4), "workload %d -> %d %s", i+1, j+1, ws[j].ipv4)
					assert.True(t, eventuallyPing(ws[i].ns, ws[j].ipv6), "workload %d -> %d %s", i+1, j+1, ws[j].ipv6)
				}
			}
		}
	})
	t.Run("each node's link address is on its WireGuard device and answers", func(t *testing.T) {
		for i, n := range l.Nodes {
			st := networkStatus(t, n, network)
			assert.Equal(t, st.Interface, deviceWith(t, namespaces.Name(n.ID, network), p.link(i)))
			assert.True(t, eventuallyPing(ws[(i+1)%3].ns, p.link(i)), "web%d -> %s", (i+1)%3+1, p.link(i))
		}
	})

	lp := newLaptop(t, l, "198.18.0.200")
	lp.wgQuickUp(t, p.userConfig())
	t.Run("the user's grid config reaches every workload", func(t *testing.T) {
		for i := range ws {
			assert.True(t, eventuallyPing(lp.ns, ws[i].ipv4), "user -> workload %d %s", i+1, ws[i].ipv4)
		}
	})

	t.Run("versions order updates", func(t *testing.T) {
		out, errOut, err := zosApply(p, 1, 0)
		require.NoError(t, err, "the same version again changes nothing: %s", errOut)
		outputs = append(outputs, out)
		p.members[1].port++
		_, errOut, err = zosApply(p, 1, 0)
		assert.Error(t, err)
		assert.Contains(t, errOut, "different content")
		p.members[1].port--
		require.NoError(t, func() error { _, _, err := zosApply(p, 1, 3); return err }())
		_, errOut, err = zosApply(p, 1, 2)
		assert.Error(t, err)
		assert.Contains(t, errOut, "older than the applied version 3")
	})

	t.Run("a node's new port heals within seconds, without bouncing the others", func(t *testing.T) {
		before := settledHandshakes(t, l.Nodes[0], network)
		p.members[1].port = 30099
		for _, i := range []int{1, 0} { // the moved node first, as zos may
			out, errOut, err := zosApply(p, i, 4)
			require.NoError(t, err, errOut)
			outputs = append(outputs, out)
		}
		start := time.Now()
		ok, took := within(10*time.Second, func() bool { return pingOK(ws[0].ns, ws[1].ipv4) })
		require.True(t, ok, "web1 -> web2 after the port move")
		t.Logf("healed in %v", took)
		assert.Less(t, time.Since(start), 10*time.Second)
		assert.True(t, eventuallyPing(ws[2].ns, ws[1].ipv4), "hidden web3 -> web2")
		assert.True(t, eventuallyPing(lp.ns, ws[1].ipv4), "user -> web2")
		assert.Contains(t, wgShow(t, l.Nodes[0], network, "endpoints"), fmt.Sprintf(":%d", 30099))
		after := handshakes(t, l.Nodes[0], network)
		hidden := p.members[2].key.PublicKey().String()
		assert.Equal(t, before[hidden], after[hidden], "the access node's session with the hidden node was not reset")
	})

	t.Run("list maps the network back to its twin and name", func(t *testing.T) {
		var list []api.ZosNetwork
		znetJSON(t, l.Nodes[1], &list, "zos", "list")
		assert.Equal(t, []api.ZosNetwork{{Network: network, Twin: 42, Name: p.name, Version: 4}}, list)
		outputs = append(outputs, znet(t, l.Nodes[1], "zos", "list"))
	})

	t.Run("a restarted znetd adopts the network as it is", func(t *testing.T) {
		acc := l.Nodes[0]
		before := settledHandshakes(t, acc, network)
		require.NoError(t, l.KillNode(acc, syscall.SIGKILL))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, l.StartNode(ctx, acc))
		var list []api.ZosNetwork
		znetJSON(t, acc, &list, "zos", "list")
		assert.Equal(t, []api.ZosNetwork{{Network: network, Twin: 42, Name: p.name, Version: 4}}, list)
		assert.Equal(t, networkStatus(t, acc, network).Interface, deviceWith(t, namespaces.Name(acc.ID, network), p.link(0)))
		assert.True(t, eventuallyPing(lp.ns, ws[2].ipv4), "user -> hidden web3")
		assert.Equal(t, before, handshakes(t, acc, network), "no session was reset")
		out, errOut, err := zosApply(p, 0, 4)
		require.NoError(t, err, "the same version after a restart: %s", errOut)
		outputs = append(outputs, out)
	})

	t.Run("no private key in any answer or log", func(t *testing.T) {
		for _, n := range l.Nodes {
			for _, args := range [][]string{{"network", "show", network, "--json"}, {"status", network, "--json"}, {"network", "list"}} {
				outputs = append(outputs, znet(t, n, args...))
			}
			outputs = append(outputs, readLogs(t, n)...)
		}
		for i, m := range p.members {
			for _, o := range outputs {
				assert.NotContains(t, o, m.key.String(), "node %d's private key leaks", i+1)
			}
		}
	})

	t.Run("zos delete removes everything", func(t *testing.T) {
		lp.down(t)
		for _, n := range l.Nodes {
			znet(t, n, "zos", "delete", "--twin", "42", p.name)
			var list []api.ZosNetwork
			znetJSON(t, n, &list, "zos", "list")
			assert.Empty(t, list)
			var nets []api.NetworkSummary
			znetJSON(t, n, &nets, "network", "list")
			assert.Empty(t, nets)
			left, err := namespaces.List(namespaces.Name(n.ID, network))
			require.NoError(t, err)
			assert.Empty(t, left, "the network's namespace on %s", n.ID)
		}
		assert.False(t, pingOK(ws[0].ns, ws[1].ipv4))
		_, errOut, err := znetRun(l.Nodes[0], "", "zos", "delete", "--twin", "42", p.name)
		assert.Error(t, err)
		assert.Contains(t, errOut, "no zos workload")
	})
}

// readLogs returns node's znetd log and its data planes' logs.
func readLogs(t *testing.T, node lab.Node) []string {
	t.Helper()
	paths := []string{node.Log}
	planes, err := filepath.Glob(filepath.Join(node.StateDir, "run", "*.log"))
	require.NoError(t, err)
	var out []string
	for _, path := range append(paths, planes...) {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		out = append(out, path+"\n"+string(b))
	}
	return out
}
