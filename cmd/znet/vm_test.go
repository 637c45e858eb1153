package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/internal/testutil/nstest"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/tap"
)

func sampleTap(netns string) api.Attachment {
	a := sampleAttachment()
	a.Kind, a.Interface, a.NetNS, a.MAC, a.MTU, a.Queues = api.KindTap, "zt0123456789", netns, "02:11:22:33:44:55", 1420, 1
	a.Subnet = mustPrefix("10.20.1.0/24")
	a.Subnet6 = mustPrefix("fd3c:9a1e:77b2:1::/64")
	a.Domain = "shop.internal"
	return a
}

func TestGuestConfig(t *testing.T) {
	fake, socket := newFake(t)
	fake.Attachment = sampleTap("/run/netns/zn-node1.shop")
	r := cli(t, "", "workload", "guest-config", "shop", "vm", "--set-name", "eth0", "--socket", socket)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, []string{"Workload(shop, vm)"}, fake.Calls())
	var doc struct {
		Network struct {
			Version   int
			Ethernets map[string]map[string]any
		}
	}
	require.NoError(t, yaml.Unmarshal([]byte(r.stdout), &doc))
	assert.Equal(t, 2, doc.Network.Version)
	eth := doc.Network.Ethernets["znet0"]
	assert.Equal(t, "eth0", eth["set-name"])
	assert.Equal(t, map[string]any{"macaddress": "02:11:22:33:44:55"}, eth["match"])
}

func TestTapCommandsRefuseANamespaceWorkload(t *testing.T) {
	for _, args := range [][]string{
		{"workload", "guest-config", "shop", "web"},
		{"workload", "exec", "shop", "web", "--", "true"},
	} {
		t.Run(args[1], func(t *testing.T) {
			fake, socket := newFake(t)
			fake.Attachment = sampleAttachment()
			fake.Attachment.Kind = api.KindNetNS
			r := cli(t, "", append([]string{"--socket", socket}, args...)...)
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, "is not a tap")
		})
	}
}

func TestAttachTapFlags(t *testing.T) {
	fake, socket := newFake(t)
	fake.Attachment = sampleTap("/run/netns/zn-node1.shop")
	r := cli(t, "", "workload", "attach", "shop", "vm", "--tap", "--mac", "52:54:00:00:00:01", "--queues", "2", "--socket", socket)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, api.AttachRequest{Name: "vm", Tap: true, MAC: "52:54:00:00:00:01", Queues: 2}, fake.LastAttach())
	assert.Contains(t, r.stdout, "mac        02:11:22:33:44:55\n")

	for _, bad := range [][]string{
		{"--tap", "--netns", "/run/netns/x"},
		{"--netns", "/run/netns/x", "--mac", "02:00:00:00:00:01"},
		{"--tap", "--queues", "0"},
	} {
		r := cli(t, "", append([]string{"workload", "attach", "shop", "vm", "--socket", socket}, bad...)...)
		assert.Equal(t, 2, r.code, "%v: %s", bad, r.stderr)
	}
}

// TestExecHandsTheQueuesOver runs a command through workload exec on a
// real tap: it sees the queue as fd 3, the environment names it, and its
// exit code is znet's.
func TestExecHandsTheQueuesOver(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	name := "zt-cli-" + testutil.RandomHex(t, 4)
	ns := nstest.CreateNS(t, name)
	require.NoError(t, tap.Create(ns, "zt0123456789", 1))
	fake, socket := newFake(t)
	fake.Attachment = sampleTap(namespaces.Path(name))

	r := cli(t, "", "workload", "exec", "shop", "vm", "--socket", socket, "--",
		"sh", "-c", `readlink /proc/self/fd/3; echo "$ZNET_TAP_FDS $ZNET_TAP_MAC $ZNET_TAP_NAME"; exit 7`)
	assert.Equal(t, 7, r.code, r.stderr)
	assert.Equal(t, "/dev/net/tun\n3 02:11:22:33:44:55 zt0123456789\n", r.stdout)

	// The queue was released when the command ended: it opens again.
	files, err := tap.Open(ns, "zt0123456789", 1)
	require.NoError(t, err)
	assert.NoError(t, files[0].Close())

	// A multi-queue tap: every queue, in order from fd 3.
	require.NoError(t, tap.Create(ns, "zt9876543210", 4))
	fake.Attachment.Interface, fake.Attachment.Queues = "zt9876543210", 4
	r = cli(t, "", "workload", "exec", "shop", "vm", "--socket", socket, "--",
		"sh", "-c", `for fd in 3 4 5 6; do readlink /proc/self/fd/$fd; done; echo "$ZNET_TAP_FDS"`)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, strings.Repeat("/dev/net/tun\n", 4)+"3,4,5,6\n", r.stdout)
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
