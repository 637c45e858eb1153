package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
	"github.com/znet/znet/zos"
)

func TestZosCommands(t *testing.T) {
	f := apitest.NewZosFake()
	sock := apitest.Serve(t, f)
	workload, err := os.ReadFile("../../zos/testdata/hostbits.json")
	require.NoError(t, err)

	r := cli(t, string(workload), "--socket", sock, "zos", "apply", "--twin", "7", "-f", "-", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	assert.Equal(t, map[string]any{"network": "z32ae69ff3de6275", "twin": 7.0, "name": "Web_Net", "version": 0.0}, got)

	r = cli(t, "", "--socket", sock, "zos", "list", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
	assert.Equal(t, []map[string]any{{"network": "z32ae69ff3de6275", "twin": 7.0, "name": "Web_Net", "version": 0.0}}, list)

	r = cli(t, "", "--socket", sock, "zos", "delete", "--twin", "7", "Web_Net")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, []string{"ZosApply(7, Web_Net)", "ZosNetworks()", "ZosDelete(7, Web_Net)"}, f.Calls(), "the name reaches the daemon as given")

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"zos", "apply", "-f", "-"}, "--twin ID is required"},
		{[]string{"zos", "apply", "--twin", "0", "-f", "-"}, `"0" is not a twin id`},
		{[]string{"zos", "apply", "--twin", "7"}, "-f FILE is required"},
		{[]string{"zos", "delete", "--twin", "x", "n"}, `"x" is not a twin id`},
	} {
		r := cli(t, "", append([]string{"--socket", sock}, tt.args...)...)
		assert.Equal(t, 2, r.code, "%v", tt.args)
		assert.Contains(t, r.stderr, tt.want, "%v", tt.args)
	}
	r = cli(t, `{"version":0,"name":"n","type":"zmachine","data":{}}`, "--socket", sock, "zos", "apply", "--twin", "7", "-f", "-")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `type: must be "network"`, "the daemon names the field")
}

// TestZosAttach covers a zmachine's interface {network, ip} as a namespace
// workload on the network of the zos workload it names.
func TestZosAttach(t *testing.T) {
	f := apitest.NewZosFake()
	f.Attachment = sampleAttachment()
	sock := apitest.Serve(t, f)
	network := zos.NetworkName(7, "Web_Net")

	r := cli(t, "", "--socket", sock, "zos", "attach", "--twin", "7", "Web_Net", "vm1", "--netns", "/run/netns/vm1", "--ip", "10.30.2.5")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, api.AttachRequest{Name: "vm1", NetNS: "/run/netns/vm1", IPv4: netip.MustParseAddr("10.30.2.5")}, f.LastAttach())
	r = cli(t, "", "--socket", sock, "zos", "detach", "--twin", "7", "Web_Net", "vm1")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, []string{"Attach(" + network + ", vm1)", "Detach(" + network + ", vm1)"}, f.Calls())

	// The zmachine itself: its NIC is a tap.
	r = cli(t, "", "--socket", sock, "zos", "attach", "--twin", "7", "Web_Net", "vm2", "--tap", "--mac", "52:54:00:00:00:02", "--ip", "10.30.2.6")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, api.AttachRequest{Name: "vm2", Tap: true, MAC: "52:54:00:00:00:02", IPv4: netip.MustParseAddr("10.30.2.6")}, f.LastAttach())

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"zos", "attach", "--twin", "7", "n", "vm1"}, "--netns PATH (or --tap for a VM) is required"},
		{[]string{"zos", "attach", "--twin", "7", "n", "vm1", "--tap", "--netns", "/run/netns/x"}, "--tap takes no --netns"},
		{[]string{"zos", "attach", "--twin", "7", "n", "vm1", "--netns", "/run/netns/x", "--mac", "02:00:00:00:00:01"}, "--mac needs --tap"},
		{[]string{"zos", "attach", "--twin", "7", "n", "vm1", "--netns", "/run/netns/x", "--ip", "fd00::1"}, `--ip: "fd00::1" is not an IPv4 address`},
		{[]string{"zos", "attach", "n", "vm1", "--netns", "/run/netns/x"}, "--twin ID is required"},
		{[]string{"zos", "detach", "--twin", "-1", "n", "vm1"}, "not a twin id"},
	} {
		r := cli(t, "", append([]string{"--socket", sock}, tt.args...)...)
		assert.Equal(t, 2, r.code, "%v", tt.args)
		assert.Contains(t, r.stderr, tt.want, "%v", tt.args)
	}
}
