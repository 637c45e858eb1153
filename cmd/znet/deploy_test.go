package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
	"github.com/znet/znet/deploy"
	"github.com/znet/znet/deploy/deploytest"
	"github.com/znet/znet/lab"
	"github.com/znet/znet/spec"
)

// deployGrid serves fake nodes node1, node2 (public) and node3 (hidden)
// on Unix sockets, their handshakes 5s before testNow, and returns them
// with a deployment file of network demo over them.
func deployGrid(t *testing.T) ([]*deploytest.Node, string) {
	t.Helper()
	var nodes []*deploytest.Node
	var entries []string
	for i := 1; i <= 3; i++ {
		n := deploytest.NewNode(fmt.Sprintf("node%d", i), byte(i))
		n.SetClock(func() time.Time { return testNow.Add(-5 * time.Second) })
		socket := apitest.Serve(t, n)
		where := fmt.Sprintf(`"endpoint_host": "198.18.0.%d"`, i)
		if i == 3 {
			where = `"hidden": true`
		}
		entries = append(entries, fmt.Sprintf(`{"id": %q, "api": "unix://%s", %s}`, n.ID(), socket, where))
		nodes = append(nodes, n)
	}
	doc := `{"name": "demo", "ip_range": "10.30.0.0/16", "nodes": [` + strings.Join(entries, ",\n") + `]}`
	file := filepath.Join(t.TempDir(), "deploy.json")
	require.NoError(t, os.WriteFile(file, []byte(doc), 0o600))
	return nodes, file
}

func TestDeploy(t *testing.T) {
	nodes, file := deployGrid(t)
	state := t.TempDir()
	r := cli(t, "", "deploy", "-f", file, "--state-dir", state)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stderr)
	ula := deploySubnet6(1)
	for _, want := range []string{
		"network demo  generation 1  10.30.0.0/16  " + spec.DeriveULA("demo").String() + "\n",
		"node node1  generation 1  subnet 10.30.0.0/24\n",
		"node node3  generation 1  subnet 10.30.2.0/24\n",
		"  PEER   ENDPOINT          ALLOWED IPS",
		"  node2  198.18.0.2:40200  10.30.1.0/24, " + ula.String() + "  5s ago     1000 B  2.0 KiB\n",
		"  node3  -                 10.30.2.0/24, " + deploySubnet6(2).String(),
	} {
		assert.Contains(t, r.stdout, want)
	}
	for _, n := range nodes {
		assert.Equal(t, uint64(1), n.Spec("demo").Generation, n.ID())
	}
	assert.FileExists(t, filepath.Join(state, "demo.json"))

	// From stdin, again: the next generation.
	doc, err := os.ReadFile(file)
	require.NoError(t, err)
	r = cli(t, string(doc), "deploy", "-f", "-", "--state-dir", state, "--no-wait")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "network demo  generation 2")
}

// deploySubnet6 is the IPv6 /64 of subnet index i of network demo.
func deploySubnet6(i int) netip.Prefix {
	a := spec.DeriveULA("demo").Addr().As16()
	a[7] = byte(i)
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

func TestDeployJSON(t *testing.T) {
	_, file := deployGrid(t)
	r := cli(t, "", "deploy", "-f", file, "--state-dir", t.TempDir(), "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var res deploy.Result
	require.NoError(t, jsonDecode(r.stdout, &res), r.stdout)
	assert.Equal(t, "demo", res.Network)
	assert.Equal(t, uint64(1), res.Generation)
	require.Len(t, res.Nodes, 3)
	for _, n := range res.Nodes {
		assert.True(t, n.Applied, n.ID)
		require.NotNil(t, n.Status, n.ID)
		assert.Len(t, n.Status.Peers, 2, n.ID)
	}
}

// TestDeployForget: a left-out node that is gone makes deploy fail with a
// hint; --forget NODE then drops it without contacting it.
func TestDeployForget(t *testing.T) {
	nodes, file := deployGrid(t)
	state := t.TempDir()
	r := cli(t, "", "deploy", "-f", file, "--state-dir", state)
	require.Equal(t, 0, r.code, r.stderr)

	var d map[string]any
	doc, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, jsonDecode(string(doc), &d))
	d["nodes"] = d["nodes"].([]any)[:2]
	without := filepath.Join(t.TempDir(), "without3.json")
	b, err := json.Marshal(d)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(without, b, 0o600))
	nodes[2].SetErr("Network", errors.New("connection refused"))

	r = cli(t, "", "deploy", "-f", without, "--state-dir", state)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "znet: node node3: deleting demo (left out of the file): connection refused; "+
		"if node node3 is gone for good, deploy again with --forget node3\n")

	calls := len(nodes[2].Calls())
	r = cli(t, "", "deploy", "-f", without, "--state-dir", state, "--forget", "node3")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "node node3  forgotten: not contacted; the network stays on it if it comes back\n")
	assert.Len(t, nodes[2].Calls(), calls, "node3 was contacted")

	r = cli(t, "", "deploy", "-f", without, "--state-dir", state)
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "node3  ")

	r = cli(t, "", "deploy", "-f", without, "--state-dir", state, "--forget", "node1")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "znet: forget: node1 is in the deployment file; take it out of the file to remove it\n", r.stderr)
}

func TestDeployFailures(t *testing.T) {
	t.Run("a failing node is named, the others applied", func(t *testing.T) {
		nodes, file := deployGrid(t)
		nodes[1].SetErr("Apply", api.Conflict("", "disk full"))
		r := cli(t, "", "deploy", "-f", file, "--state-dir", t.TempDir())
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stdout, "node node2  generation -  subnet 10.30.1.0/24\n  FAILED: applying generation 1: disk full\n")
		assert.Equal(t, "znet: node node2: applying generation 1: disk full\nznet: deploy of demo: 1 of 3 nodes failed\n", r.stderr)
		assert.NotNil(t, nodes[0].Spec("demo"))
	})
	t.Run("the wait times out naming the missing peers", func(t *testing.T) {
		nodes, file := deployGrid(t)
		nodes[1].HandshakeAfter(1 << 20)
		r := cli(t, "", "deploy", "-f", file, "--state-dir", t.TempDir(), "--timeout", "300ms")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "znet: node node2: waiting for the mesh: no new handshake or packet from node1, node3 since generation 1 was applied\n")
		assert.NotContains(t, r.stderr, "no answer from znetd")
	})
	t.Run("bad command lines and files", func(t *testing.T) {
		dir := t.TempDir()
		https := filepath.Join(dir, "https.json")
		require.NoError(t, os.WriteFile(https, []byte(`{"name": "demo", "ip_range": "10.30.0.0/16",
			"nodes": [{"id": "a", "api": "https://a.example:8443", "hidden": true}]}`), 0o600))
		tests := []struct {
			name  string
			stdin string
			args  []string
			code  int
			want  string
		}{
			{"no file", "", []string{"deploy"}, 2, "znet: deploy: -f FILE is required\nusage: znet deploy -f DEPLOYMENT.json"},
			{"missing file", "", []string{"deploy", "-f", filepath.Join(dir, "nope.json")}, 1, "znet: reading the deployment: open "},
			{"https without a token file", "", []string{"deploy", "-f", https}, 1, "znet: nodes[0].token_file: is required for an https API\n"},
			{"bad stdin", `{"name": "demo", "nodes": 1}`, []string{"deploy", "-f", "-"}, 1, "znet: nodes: must be an array, not a number\n"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := cli(t, tt.stdin, append(tt.args, "--state-dir", dir)...)
				assert.Equal(t, tt.code, r.code)
				assert.True(t, strings.HasPrefix(r.stderr, tt.want), "stderr %q", r.stderr)
				assert.Empty(t, r.stdout)
			})
		}
	})
}

func TestDemoDeployment(t *testing.T) {
	nodes := func(n int) *lab.Lab {
		l := &lab.Lab{Dir: "/tmp/lab"}
		for i := 1; i <= n; i++ {
			l.Nodes = append(l.Nodes, lab.Node{ID: fmt.Sprintf("node%d", i), Socket: fmt.Sprintf("/tmp/lab/node%d/znetd.sock", i),
				Underlay: netip.AddrFrom4([4]byte{198, 18, 0, byte(i)})})
		}
		return l
	}
	tests := []struct {
		nodes  int
		hidden []bool
	}{
		{1, []bool{false}},
		{2, []bool{false, false}},
		{3, []bool{false, false, true}},
		{4, []bool{false, false, false, true}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.nodes), func(t *testing.T) {
			d := demoDeployment(nodes(tt.nodes))
			require.NoError(t, d.Validate())
			assert.Equal(t, "demo", d.Name)
			assert.Equal(t, "10.30.0.0/16", d.IPRange.String())
			for i, n := range d.Nodes {
				assert.Equal(t, tt.hidden[i], n.Hidden, n.ID)
				assert.Equal(t, fmt.Sprintf("unix:///tmp/lab/node%d/znetd.sock", i+1), n.API)
				if !n.Hidden {
					assert.Equal(t, fmt.Sprintf("198.18.0.%d", i+1), n.EndpointHost)
				}
			}
		})
	}
}

func TestLabWithoutALab(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lab")
	r := cli(t, "", "lab", "status", "--dir", dir)
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "znet: no lab in "+dir+" (`znet lab up --dir "+dir+"` makes one)\n", r.stderr)

	r = cli(t, "", "lab", "down", "--dir", dir)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "no lab in "+dir+"; nothing to do\n", r.stdout)

	r = cli(t, "", "lab", "up", "--dir", dir, "--znetd", filepath.Join(dir, "znetd"))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "znet: no znetd binary at "+filepath.Join(dir, "znetd")+" (run `make build`, or pass --znetd PATH)")
	assert.NoDirExists(t, dir)
}

func TestWriteLabUp(t *testing.T) {
	l := &lab.Lab{Dir: "/tmp/znet-lab", Nodes: []lab.Node{
		{ID: "node1", Underlay: netip.MustParseAddr("198.18.0.1"), Socket: "/tmp/znet-lab/node1/znetd.sock"},
		{ID: "node2", Underlay: netip.MustParseAddr("198.18.0.2"), Socket: "/tmp/znet-lab/node2/znetd.sock"},
		{ID: "node3", Underlay: netip.MustParseAddr("198.18.0.3"), Socket: "/tmp/znet-lab/node3/znetd.sock"},
	}}
	res := &deploy.Result{Network: "demo", Generation: 2, Spec: &spec.Spec{Nodes: []spec.Node{
		{ID: "node1", Endpoint: "198.18.0.1:40001"}, {ID: "node2", Endpoint: "198.18.0.2:40002"}, {ID: "node3"},
	}}}
	for i, n := range l.Nodes {
		res.Nodes = append(res.Nodes, deploy.NodeResult{ID: n.ID, Subnet: netip.MustParsePrefix(fmt.Sprintf("10.30.%d.0/24", i)), Applied: true})
	}
	res.Nodes[0].Status = &api.NetworkStatus{Namespace: "zn-node1.demo", Interface: "zn0123456789"}
	var wls []labWorkload
	for i := range 3 {
		wls = append(wls, labWorkload{Node: l.Nodes[i].ID, Name: fmt.Sprintf("w%d", i+1), NetNS: fmt.Sprintf("lab-w%d", i+1),
			IPv4: netip.AddrFrom4([4]byte{10, 30, byte(i), 2}), IPv6: netip.MustParseAddr(fmt.Sprintf("fd00:0:0:%d::2", i))})
	}
	var b strings.Builder
	require.NoError(t, writeLabUp(&b, labUpResult{Lab: l, Deploy: res, Workloads: wls}))
	out := b.String()
	for _, want := range []string{
		"lab in /tmp/znet-lab: 3 nodes; network demo 10.30.0.0/16 generation 2\n",
		"node1  198.18.0.1  198.18.0.1:40001  10.30.0.0/24  w1        lab-w1     10.30.0.2  fd00::2\n",
		"node3  198.18.0.3  hidden            10.30.2.0/24  w3        lab-w3     10.30.2.2  fd00:0:0:2::2\n",
		"ip netns exec lab-w1 ping -c 3 10.30.1.2",
		"ip netns exec lab-w1 ping -c 3 fd00:0:0:1::2",
		"ip netns exec lab-w3 ping -c 3 10.30.1.2",
		"ip netns exec zn-node1.demo wg show zn0123456789",
		"--socket /tmp/znet-lab/node1/znetd.sock status demo",
		"lab down --dir /tmp/znet-lab",
	} {
		assert.Contains(t, out, want)
	}
}

func TestDeployAndLabHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"znet deploy -f DEPLOYMENT.json [--state-dir DIR] [--no-wait]", "znet lab up [--nodes N]", "znet lab down [--dir DIR]", "znet lab status [--dir DIR]"}},
		{[]string{"help", "deploy"}, []string{"-f FILE", "--state-dir DIR", "/var/lib/znet/deploy", "--no-wait"}},
		{[]string{"lab", "up", "--help"}, []string{"--nodes N", "--dir DIR", "/tmp/znet-lab", "--wireguard MODE", "--znetd PATH", "--name NAME"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := cli(t, "", tt.args...)
			assert.Equal(t, 0, r.code, r.stderr)
			for _, want := range tt.want {
				assert.Contains(t, r.stdout, want)
			}
		})
	}
}
