package e2e

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/lab"
	"github.com/znet/znet/store"
	"github.com/znet/znet/zos"
)

// TestPrivateKeyNeverLeaves reads a node's private key for a network from
// its state file, takes the key a zos workload imported, and looks for them, as base64 and as hex (the form the
// WireGuard control protocol uses), in every API answer, the CLI's output
// (JSON and human), the znetd log and the data-plane logs.
func TestPrivateKeyNeverLeaves(t *testing.T) {
	l := newLabWith(t, lab.Config{Nodes: 1, AllowImportedKeys: true})
	node := l.Nodes[0]

	var outputs []string
	record := func(args ...string) {
		t.Helper()
		outputs = append(outputs, strings.Join(args, " ")+"\n"+znet(t, node, args...))
	}
	var res api.Reservation
	znetJSON(t, node, &res, "network", "reserve", "shop")
	ep := fmt.Sprintf("%s:%d", node.Underlay, res.ListenPort)
	spec := fmt.Sprintf(`{"name":"shop","generation":1,"ip_range":"10.20.0.0/16","nodes":[{"id":%q,"subnet":"10.20.1.0/24","endpoint":%q}]}`, node.ID, ep)
	out, errOut, err := znetRun(node, spec, "network", "apply", "-f", "-")
	require.NoError(t, err, errOut)
	outputs = append(outputs, out+errOut)
	ns := workloadNS(t, "web")
	record("workload", "attach", "shop", "web", "--netns", "/run/netns/"+ns)
	record("access", "add", "shop", "alice")
	record("access", "add", "shop", "bob", "--json")
	out, errOut, err = znetRun(node, "", "access", "add", "shop", "carol", "--qr")
	require.NoError(t, err, errOut)
	outputs = append(outputs, out+errOut)

	// A zos workload brings its own key.
	imported := newKey(t)
	wl := fmt.Sprintf(`{"version":0,"name":"leak","type":"network","data":{"ip_range":"10.30.0.0/16","subnet":"10.30.2.0/24",`+
		`"wireguard_private_key":%q,"wireguard_listen_port":30500,"peers":[],"mycelium":null}}`, imported)
	out, errOut, err = znetRun(node, wl, "zos", "apply", "--twin", "9", "-f", "-")
	require.NoError(t, err, errOut)
	outputs = append(outputs, out+errOut)
	_, errOut, _ = znetRun(node, strings.Replace(wl, `"version":0`, `"version":0,"colour":1`, 1), "zos", "apply", "--twin", "9", "-f", "-")
	outputs = append(outputs, errOut)
	record("zos", "list")
	record("zos", "list", "--json")
	zosNet := zos.NetworkName(9, "leak")
	record("network", "show", zosNet, "--json")
	record("status", zosNet)

	var private string
	withStoppedStore(t, l, node, func(s *store.Store) {
		require.NoError(t, s.View(func(tx *store.Tx) error {
			n, err := tx.Network("shop")
			if err == nil {
				private = n.PrivateKey
			}
			return err
		}))
	})
	raw, err := base64.StdEncoding.DecodeString(private)
	require.NoError(t, err)
	require.Len(t, raw, 32, "the state holds a WireGuard private key")
	forms := []string{private, hex.EncodeToString(raw), imported.String(), hex.EncodeToString(imported[:])}

	for _, asJSON := range []bool{true, false} {
		for _, args := range [][]string{
			{"network", "reserve", "shop"},
			{"network", "list"},
			{"network", "show", "shop"},
			{"status"},
			{"status", "shop"},
			{"workload", "list", "shop"},
			{"access", "list", "shop"},
		} {
			if asJSON {
				args = append(args, "--json")
			}
			record(args...)
		}
	}
	hc := unixHTTP(node)
	for _, path := range []string{"/v1/networks", "/v1/networks/shop", "/v1/status", "/v1/status/shop",
		"/v1/networks/shop/workloads", "/v1/networks/shop/access"} {
		resp, err := hc.Get("http://znetd" + path)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, b)
		outputs = append(outputs, path+"\n"+string(b))
	}
	resp, err := hc.Post("http://znetd/v1/networks/shop/reserve", "application/json", nil)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	outputs = append(outputs, "reserve\n"+string(b))

	logs := []string{node.Log}
	planes, err := filepath.Glob(filepath.Join(node.StateDir, "run", "*.log"))
	require.NoError(t, err)
	require.NotEmpty(t, planes, "the data plane writes a log")
	logs = append(logs, planes...)
	for _, path := range logs {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NotEmpty(t, b, path)
		outputs = append(outputs, path+"\n"+string(b))
	}

	for _, o := range outputs {
		title, _, _ := strings.Cut(o, "\n")
		for _, f := range forms {
			assert.NotContains(t, o, f, "the node's private key leaks in %s", title)
		}
	}
	// The checks can fail: the public key, made the same way, is there.
	assert.Contains(t, strings.Join(outputs, "\n"), res.PublicKey)
	assert.Contains(t, strings.Join(outputs, "\n"), imported.PublicKey().String())
}
