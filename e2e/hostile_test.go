package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/api"
	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/store"
)

// badRequest is one hostile request sent as raw HTTP to a node's socket and
// the answer it must get. field "" means the answer must name no field.
type badRequest struct {
	name   string
	method string
	path   string
	body   string
	status int
	field  string
}

// unixHTTP returns an HTTP client that talks to node's znetd socket.
func unixHTTP(node lab.Node) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", node.Socket)
			},
		},
	}
}

// withStoppedStore stops node's znetd (SIGTERM), opens a copy of its state
// file for fn and starts znetd again. The copy keeps fn from touching the
// node's own file.
func withStoppedStore(t *testing.T, l *lab.Lab, node lab.Node, fn func(*store.Store)) {
	t.Helper()
	require.NoError(t, l.KillNode(node, syscall.SIGTERM))
	b, err := os.ReadFile(filepath.Join(node.StateDir, "state.db"))
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "state.db"), b, 0o600))
	s, err := store.Open(dir)
	require.NoError(t, err)
	fn(s)
	require.NoError(t, s.Close())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, l.StartNode(ctx, node))
}

// stateDump returns a dump of node's whole state file.
func stateDump(t *testing.T, l *lab.Lab, node lab.Node) []byte {
	t.Helper()
	var dump []byte
	withStoppedStore(t, l, node, func(s *store.Store) {
		var err error
		dump, err = s.Dump()
		require.NoError(t, err)
	})
	return dump
}

// kernelView is what a node shows of itself outside its state file: its
// namespaces, its data planes and what the CLI lists.
func kernelView(t *testing.T, node lab.Node, network string) string {
	t.Helper()
	nss, err := namespaces.List(namespaces.NodePrefix(node.ID))
	require.NoError(t, err)
	return fmt.Sprintf("namespaces %v\ndata planes %v\nnetworks %s\nworkloads %s\naccess %s",
		nss, dataplanePIDs(t, node),
		znet(t, node, "network", "list", "--json"),
		znet(t, node, "workload", "list", network, "--json"),
		znet(t, node, "access", "list", network, "--json"))
}

func wgKey(t *testing.T) string {
	t.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	require.NoError(t, err)
	return k.PublicKey().String()
}

// TestHostileInput sends a table of bad requests, raw and through the CLI,
// to a node with a network, a workload and an access peer: each gets a 4xx
// naming the field and the reason, and neither the state file nor the
// kernel side changes.
func TestHostileInput(t *testing.T) {
	l := newLab(t, 1)
	node := l.Nodes[0]

	var res api.Reservation
	znetJSON(t, node, &res, "network", "reserve", "shop")
	ep := fmt.Sprintf("%s:%d", node.Underlay, res.ListenPort)
	good := fmt.Sprintf(`{"name":"shop","generation":2,"ip_range":"10.20.0.0/16","nodes":[{"id":%q,"subnet":"10.20.1.0/24","endpoint":%q}]}`, node.ID, ep)
	_, errOut, err := znetRun(node, good, "network", "apply", "-f", "-")
	require.NoError(t, err, errOut)
	web := attach(t, node, "shop", "web")
	alice := wgKey(t)
	znet(t, node, "access", "add", "shop", "alice", "--public-key", alice)
	spare := workloadNS(t, "spare") // an existing namespace for attach attempts

	// $X in a body is replaced below.
	r := strings.NewReplacer(
		"$NODE", node.ID, "$EP", ep, "$OWNKEY", res.PublicKey, "$K1", wgKey(t), "$K2", wgKey(t),
		"$ALICE", alice, "$NETNS", "/run/netns/"+spare, "$WEB", web.ipv4,
		"$SHOPNS", namespaces.Path(namespaces.Name(node.ID, "shop")),
		"$LONG", strings.Repeat("a", 33))
	self := `{"id":"$NODE","subnet":"10.20.1.0/24","endpoint":"$EP"}`
	apply := func(name string, status int, field, body string) badRequest {
		return badRequest{name: "apply " + name, method: http.MethodPost, path: "/v1/networks", body: body, status: status, field: field}
	}
	// withNodes is a valid generation-3 spec of shop with extra members.
	withNodes := func(extra string) string {
		return `{"name":"shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[` + self + `,` + extra + `]}`
	}
	specWith := func(field string) string {
		return `{"name":"shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[` + self + `],` + field + `}`
	}
	attachReq := func(name string, status int, field, body string) badRequest {
		return badRequest{name: "attach " + name, method: http.MethodPost, path: "/v1/networks/shop/workloads", body: body, status: status, field: field}
	}
	accessReq := func(name string, status int, field, body string) badRequest {
		return badRequest{name: "access " + name, method: http.MethodPost, path: "/v1/networks/shop/access", body: body, status: status, field: field}
	}
	huge := `{"name":"shop"` + strings.Repeat(" ", api.MaxBodySize) + `}`

	cases := []badRequest{
		// JSON itself.
		apply("empty body", 400, "", ``),
		apply("truncated", 400, "", `{"name":"shop","generation":3,"ip_ra`),
		apply("malformed", 400, "", `{"name":"shop" "generation":3}`),
		apply("array", 400, "", `[]`),
		apply("null", 400, "", `null`),
		apply("trailing object", 400, "", good+`{}`),
		apply("over 1 MiB", 413, "", huge),
		apply("unknown field", 400, "color", specWith(`"color":"red"`)),
		apply("unknown node field", 400, "nodes[1].role", withNodes(`{"id":"n2","subnet":"10.20.2.0/24","public_key":"$K1","role":"x"}`)),
		apply("field twice", 400, "name", `{"name":"shop","name":"shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[`+self+`]}`),
		// Wrong types and numbers.
		apply("generation as string", 400, "generation", `{"name":"shop","generation":"3","ip_range":"10.20.0.0/16","nodes":[`+self+`]}`),
		apply("negative generation", 400, "generation", `{"name":"shop","generation":-1,"ip_range":"10.20.0.0/16","nodes":[`+self+`]}`),
		apply("fractional generation", 400, "generation", `{"name":"shop","generation":1.5,"ip_range":"10.20.0.0/16","nodes":[`+self+`]}`),
		apply("huge generation", 400, "generation", `{"name":"shop","generation":1e30,"ip_range":"10.20.0.0/16","nodes":[`+self+`]}`),
		apply("zero generation", 400, "generation", `{"name":"shop","generation":0,"ip_range":"10.20.0.0/16","nodes":[`+self+`]}`),
		apply("name as number", 400, "name", `{"name":7,"generation":3,"ip_range":"10.20.0.0/16","nodes":[`+self+`]}`),
		apply("nodes as object", 400, "nodes", `{"name":"shop","generation":3,"ip_range":"10.20.0.0/16","nodes":{}}`),
		apply("mtu as string", 400, "mtu", specWith(`"mtu":"1420"`)),
		apply("mtu too small", 400, "mtu", specWith(`"mtu":100`)),
		apply("no nodes", 400, "nodes", `{"name":"shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[]}`),
		// Names.
		apply("upper-case name", 400, "name", `{"name":"Shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[`+self+`]}`),
		apply("underscore in name", 400, "name", `{"name":"sh_op","generation":3,"ip_range":"10.20.0.0/16","nodes":[`+self+`]}`),
		apply("name too long", 400, "name", `{"name":"$LONG","generation":3,"ip_range":"10.20.0.0/16","nodes":[`+self+`]}`),
		apply("name with leading dash", 400, "name", `{"name":"-shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[`+self+`]}`),
		apply("empty name", 400, "name", `{"name":"","generation":3,"ip_range":"10.20.0.0/16","nodes":[`+self+`]}`),
		apply("node id not a label", 400, "nodes[1].id", withNodes(`{"id":"n.2","subnet":"10.20.2.0/24","public_key":"$K1"}`)),
		// Ranges and subnets.
		apply("ip_range with host bits", 400, "ip_range", `{"name":"shop","generation":3,"ip_range":"10.20.0.1/16","nodes":[`+self+`]}`),
		apply("ip_range IPv6", 400, "ip_range", `{"name":"shop","generation":3,"ip_range":"fd00::/48","nodes":[`+self+`]}`),
		apply("ip_range /0", 400, "ip_range", `{"name":"shop","generation":3,"ip_range":"0.0.0.0/0","nodes":[`+self+`]}`),
		apply("ip_range /32", 400, "ip_range", `{"name":"shop","generation":3,"ip_range":"10.20.0.0/32","nodes":[`+self+`]}`),
		apply("ip_range without length", 400, "ip_range", `{"name":"shop","generation":3,"ip_range":"10.20.0.0","nodes":[`+self+`]}`),
		apply("ipv6_range IPv4", 400, "ipv6_range", specWith(`"ipv6_range":"10.0.0.0/8"`)),
		apply("ipv6_range /64", 400, "ipv6_range", specWith(`"ipv6_range":"fd3c:9a1e:77b2::/64"`)),
		apply("ipv6_range not ULA", 400, "ipv6_range", specWith(`"ipv6_range":"2001:db8::/48"`)),
		apply("subnet with host bits", 400, "nodes[0].subnet", `{"name":"shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[{"id":"$NODE","subnet":"10.20.1.1/24","endpoint":"$EP"}]}`),
		apply("subnet IPv6", 400, "nodes[0].subnet", `{"name":"shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[{"id":"$NODE","subnet":"fd00::/64","endpoint":"$EP"}]}`),
		apply("subnet outside ip_range", 400, "nodes[0].subnet", `{"name":"shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[{"id":"$NODE","subnet":"10.30.1.0/24","endpoint":"$EP"}]}`),
		apply("subnet /32", 400, "nodes[0].subnet", `{"name":"shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[{"id":"$NODE","subnet":"10.20.1.5/32","endpoint":"$EP"}]}`),
		apply("subnet /0", 400, "nodes[0].subnet", `{"name":"shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[{"id":"$NODE","subnet":"0.0.0.0/0","endpoint":"$EP"}]}`),
		apply("overlapping subnets", 400, "nodes[1].subnet", withNodes(`{"id":"n2","subnet":"10.20.1.128/25","public_key":"$K1"}`)),
		// Members, keys and endpoints.
		apply("duplicate node id", 400, "nodes[1].id", withNodes(`{"id":"$NODE","subnet":"10.20.2.0/24","public_key":"$K1"}`)),
		apply("member without key", 400, "nodes[1].public_key", withNodes(`{"id":"n2","subnet":"10.20.2.0/24"}`)),
		apply("key of 16 bytes", 400, "nodes[1].public_key", withNodes(`{"id":"n2","subnet":"10.20.2.0/24","public_key":"AAAAAAAAAAAAAAAAAAAAAA=="}`)),
		apply("key of 33 bytes", 400, "nodes[1].public_key", withNodes(`{"id":"n2","subnet":"10.20.2.0/24","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`)),
		apply("key not base64", 400, "nodes[1].public_key", withNodes(`{"id":"n2","subnet":"10.20.2.0/24","public_key":"not a key!"}`)),
		apply("duplicate key", 400, "nodes[2].public_key", withNodes(`{"id":"n2","subnet":"10.20.2.0/24","public_key":"$K1"},{"id":"n3","subnet":"10.20.3.0/24","public_key":"$K1"}`)),
		apply("endpoint without port", 400, "nodes[1].endpoint", withNodes(`{"id":"n2","subnet":"10.20.2.0/24","public_key":"$K1","endpoint":"198.18.0.9"}`)),
		apply("endpoint port 0", 400, "nodes[1].endpoint", withNodes(`{"id":"n2","subnet":"10.20.2.0/24","public_key":"$K1","endpoint":"198.18.0.9:0"}`)),
		apply("endpoint port 65536", 400, "nodes[1].endpoint", withNodes(`{"id":"n2","subnet":"10.20.2.0/24","public_key":"$K1","endpoint":"198.18.0.9:65536"}`)),
		apply("endpoint IPv6 without brackets", 400, "nodes[1].endpoint", withNodes(`{"id":"n2","subnet":"10.20.2.0/24","public_key":"$K1","endpoint":"fd00::1:51820"}`)),
		apply("endpoint bad host", 400, "nodes[1].endpoint", withNodes(`{"id":"n2","subnet":"10.20.2.0/24","public_key":"$K1","endpoint":"bad host!:51820"}`)),
		apply("this node not a member", 400, "nodes", `{"name":"shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[{"id":"n2","subnet":"10.20.2.0/24","public_key":"$K1"}]}`),
		// Conflicts with what the node has.
		apply("stale generation", 409, "generation", `{"name":"shop","generation":1,"ip_range":"10.20.0.0/16","nodes":[`+self+`]}`),
		apply("same generation, other content", 409, "generation", `{"name":"shop","generation":2,"ip_range":"10.20.0.0/16","mtu":1400,"nodes":[`+self+`]}`),
		apply("not the reserved key", 409, "nodes[0].public_key", `{"name":"shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[{"id":"$NODE","subnet":"10.20.1.0/24","public_key":"$K1","endpoint":"$EP"}]}`),
		apply("not the reserved port", 409, "nodes[0].endpoint", `{"name":"shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[{"id":"$NODE","subnet":"10.20.1.0/24","endpoint":"198.18.0.1:1"}]}`),
		apply("subnet change under workloads", 409, "nodes[0].subnet", `{"name":"shop","generation":3,"ip_range":"10.20.0.0/16","nodes":[{"id":"$NODE","subnet":"10.20.9.0/24","endpoint":"$EP"}]}`),
		apply("range change under workloads", 409, "ip_range", `{"name":"shop","generation":3,"ip_range":"10.0.0.0/8","nodes":[{"id":"$NODE","subnet":"10.20.1.0/24","endpoint":"$EP"}]}`),
		apply("new network with a key never reserved", 409, "nodes[0].public_key", `{"name":"evil","generation":1,"ip_range":"10.20.0.0/16","nodes":[{"id":"$NODE","subnet":"10.20.1.0/24","public_key":"$K1"}]}`),
		apply("new network with a port never reserved", 409, "nodes[0].endpoint", `{"name":"evil","generation":1,"ip_range":"10.20.0.0/16","nodes":[{"id":"$NODE","subnet":"10.20.1.0/24","endpoint":"198.18.0.1:1"}]}`),

		// Paths and methods.
		{name: "reserve bad name", method: "POST", path: "/v1/networks/Bad_Name/reserve", status: 400, field: "name"},
		{name: "reserve port 0", method: "POST", path: "/v1/networks/newnet/reserve", body: `{"listen_port":0}`, status: 400, field: "listen_port"},
		{name: "reserve port 65536", method: "POST", path: "/v1/networks/newnet/reserve", body: `{"listen_port":65536}`, status: 400, field: "listen_port"},
		{name: "reserve port as string", method: "POST", path: "/v1/networks/newnet/reserve", body: `{"listen_port":"51830"}`, status: 400, field: "listen_port"},
		{name: "reserve unknown field", method: "POST", path: "/v1/networks/newnet/reserve", body: `{"private_key":"x"}`, status: 400, field: "private_key"},
		{name: "reserve truncated", method: "POST", path: "/v1/networks/newnet/reserve", body: `{"listen_port":`, status: 400},
		{name: "reserve name too long", method: "POST", path: "/v1/networks/$LONG/reserve", status: 400, field: "name"},
		{name: "show unknown network", method: "GET", path: "/v1/networks/nosuch", status: 404, field: "name"},
		{name: "show bad name", method: "GET", path: "/v1/networks/a..b", status: 400, field: "name"},
		{name: "delete unknown network", method: "DELETE", path: "/v1/networks/nosuch", status: 404, field: "name"},
		{name: "delete with bad force", method: "DELETE", path: "/v1/networks/shop?force=maybe", status: 400, field: "force"},
		{name: "delete with workloads", method: "DELETE", path: "/v1/networks/shop", status: 409, field: "name"},
		{name: "wrong method", method: "PUT", path: "/v1/networks", status: 405},
		{name: "unknown path", method: "GET", path: "/v1/nothing", status: 404},
		{name: "status of unknown network", method: "GET", path: "/v1/status/nosuch", status: 404, field: "name"},
		{name: "status bad name", method: "GET", path: "/v1/status/NOPE", status: 400, field: "name"},
		{name: "workloads of unknown network", method: "GET", path: "/v1/networks/nosuch/workloads", status: 404, field: "name"},
		{name: "detach unknown workload", method: "DELETE", path: "/v1/networks/shop/workloads/nosuch", status: 404, field: "workload"},
		{name: "detach bad name", method: "DELETE", path: "/v1/networks/shop/workloads/We_b", status: 400, field: "workload"},
		{name: "remove unknown access peer", method: "DELETE", path: "/v1/networks/shop/access/nosuch", status: 404, field: "peer"},
		{name: "remove access bad name", method: "DELETE", path: "/v1/networks/shop/access/Al_ice", status: 400, field: "peer"},

		// Attach.
		attachReq("truncated", 400, "", `{"name":"x","netns":`),
		attachReq("not an object", 400, "", `"web"`),
		attachReq("over 1 MiB", 413, "", huge),
		attachReq("unknown field", 400, "color", `{"name":"x","netns":"$NETNS","color":"red"}`),
		attachReq("field twice", 400, "name", `{"name":"x","name":"y","netns":"$NETNS"}`),
		attachReq("name as number", 400, "name", `{"name":1,"netns":"$NETNS"}`),
		attachReq("name not a label", 400, "name", `{"name":"Web","netns":"$NETNS"}`),
		attachReq("name too long", 400, "name", `{"name":"$LONG","netns":"$NETNS"}`),
		attachReq("no netns", 400, "netns", `{"name":"x"}`),
		attachReq("netns that does not exist", 400, "netns", `{"name":"x","netns":"/run/netns/zt-does-not-exist"}`),
		attachReq("netns a plain file", 400, "netns", `{"name":"x","netns":"/etc/hostname"}`),
		attachReq("netns the node's own", 400, "netns", `{"name":"x","netns":"/proc/self/ns/net"}`),
		attachReq("netns the network's own", 400, "netns", `{"name":"x","netns":"$SHOPNS"}`),
		attachReq("twice under one name", 409, "name", `{"name":"web","netns":"$NETNS"}`),
		attachReq("address outside the subnet", 400, "ipv4", `{"name":"x","netns":"$NETNS","ipv4":"10.20.2.5"}`),
		attachReq("address of the gateway", 400, "ipv4", `{"name":"x","netns":"$NETNS","ipv4":"10.20.1.1"}`),
		attachReq("address taken", 409, "ipv4", `{"name":"x","netns":"$NETNS","ipv4":"$WEB"}`),
		attachReq("network address", 400, "ipv4", `{"name":"x","netns":"$NETNS","ipv4":"10.20.1.0"}`),
		attachReq("broadcast address", 400, "ipv4", `{"name":"x","netns":"$NETNS","ipv4":"10.20.1.255"}`),
		attachReq("IPv6 as ipv4", 400, "ipv4", `{"name":"x","netns":"$NETNS","ipv4":"fd00::1"}`),
		attachReq("ipv4 as number", 400, "ipv4", `{"name":"x","netns":"$NETNS","ipv4":167772161}`),
		attachReq("ifname too long", 400, "ifname", `{"name":"x","netns":"$NETNS","ifname":"abcdefghijklmnop"}`),
		attachReq("ifname with slash", 400, "ifname", `{"name":"x","netns":"$NETNS","ifname":"a/b"}`),
		{name: "attach to unknown network", method: "POST", path: "/v1/networks/nosuch/workloads", body: `{"name":"x","netns":"$NETNS"}`, status: 404, field: "name"},

		// Access.
		accessReq("malformed", 400, "", `{"name":"bob",}`),
		accessReq("unknown field", 400, "private_key", `{"name":"bob","public_key":"$K2","private_key":"x"}`),
		accessReq("no key", 400, "public_key", `{"name":"bob"}`),
		accessReq("key of 16 bytes", 400, "public_key", `{"name":"bob","public_key":"AAAAAAAAAAAAAAAAAAAAAA=="}`),
		accessReq("key not base64", 400, "public_key", `{"name":"bob","public_key":"%%%%"}`),
		accessReq("key as number", 400, "public_key", `{"name":"bob","public_key":42}`),
		accessReq("name not a label", 400, "name", `{"name":"Bob","public_key":"$K2"}`),
		accessReq("twice under one name", 409, "name", `{"name":"alice","public_key":"$K2"}`),
		accessReq("key used by another peer", 409, "public_key", `{"name":"bob","public_key":"$ALICE"}`),
		accessReq("key of a member", 409, "public_key", `{"name":"bob","public_key":"$OWNKEY"}`),
		{name: "access to unknown network", method: "POST", path: "/v1/networks/nosuch/access", body: `{"name":"bob","public_key":"$K2"}`, status: 404, field: "name"},
	}
	require.GreaterOrEqual(t, len(cases), 60)

	// CLI commands that must fail with the reason on stderr.
	cli := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"apply with host bits", `{"name":"shop","generation":3,"ip_range":"10.20.0.1/16","nodes":[` + self + `]}`, []string{"network", "apply", "-f", "-"}, "ip_range"},
		{"apply truncated", `{"name":`, []string{"network", "apply", "-f", "-"}, "JSON"},
		{"apply stale", `{"name":"shop","generation":1,"ip_range":"10.20.0.0/16","nodes":[` + self + `]}`, []string{"network", "apply", "-f", "-"}, "generation"},
		{"reserve bad name", "", []string{"network", "reserve", "Bad_Name"}, "name"},
		{"delete unknown", "", []string{"network", "delete", "nosuch"}, "nosuch"},
		{"attach twice", "", []string{"workload", "attach", "shop", "web", "--netns", "$NETNS"}, "already attached"},
		{"attach to missing netns", "", []string{"workload", "attach", "shop", "x", "--netns", "/run/netns/zt-does-not-exist"}, "netns"},
		{"attach gateway", "", []string{"workload", "attach", "shop", "x", "--netns", "$NETNS", "--ipv4", "10.20.1.1"}, "ipv4"},
		{"attach to unknown network", "", []string{"workload", "attach", "nosuch", "x", "--netns", "$NETNS"}, "nosuch"},
		{"access with short key", "", []string{"access", "add", "shop", "bob", "--public-key", "AAAA"}, "public_key"},
		{"access twice", "", []string{"access", "add", "shop", "alice", "--public-key", "$K2"}, "alice"},
	}

	dumpBefore := stateDump(t, l, node)
	viewBefore := kernelView(t, node, "shop")
	hc := unixHTTP(node)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := r.Replace(c.body)
			if c.body == huge {
				body = huge
			}
			req, err := http.NewRequestWithContext(t.Context(), c.method, "http://znetd"+r.Replace(c.path), strings.NewReader(body))
			require.NoError(t, err)
			resp, err := hc.Do(req)
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, c.status, resp.StatusCode, "%s", b)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var e struct {
				Error string `json:"error"`
				Field string `json:"field"`
			}
			require.NoError(t, json.Unmarshal(b, &e), "%s", b)
			assert.NotEmpty(t, e.Error, "a reason")
			assert.Equal(t, c.field, e.Field, "%s", b)
		})
	}
	for _, c := range cli {
		t.Run("cli "+c.name, func(t *testing.T) {
			args := make([]string, len(c.args))
			for i, a := range c.args {
				args[i] = r.Replace(a)
			}
			out, errOut, err := znetRun(node, r.Replace(c.stdin), args...)
			require.Error(t, err, "stdout %q", out)
			assert.Empty(t, out)
			assert.Contains(t, errOut, c.want)
		})
	}
	assert.Equal(t, viewBefore, kernelView(t, node, "shop"), "the kernel side changed")
	assert.Equal(t, string(dumpBefore), string(stateDump(t, l, node)), "the state changed")
}
