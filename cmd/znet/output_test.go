package main

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
	"github.com/znet/znet/spec"
)

func jsonDecode(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func sampleAttachment() api.Attachment {
	return api.Attachment{
		IPv4: netip.MustParseAddr("10.20.1.2"), IPv6: netip.MustParseAddr("fd3c:9a1e:77b2:1::2"),
		Gateway: netip.MustParseAddr("10.20.1.1"), Gateway6: netip.MustParseAddr("fd3c:9a1e:77b2:1::1"),
		DNS:       []netip.Addr{netip.MustParseAddr("10.20.1.1"), netip.MustParseAddr("fd3c:9a1e:77b2:1::1")},
		Interface: "znet0",
	}
}

func sampleWorkloads() []api.Workload {
	return []api.Workload{
		{
			Name: "db", IPv4: netip.MustParseAddr("10.20.1.3"), IPv6: netip.MustParseAddr("fd3c:9a1e:77b2:1::3"),
			NetNS: "/run/netns/db", Interface: "znet0", State: api.StateAttached,
			Kind: api.KindNetNS, MAC: "02:00:00:00:00:03",
		},
		{
			Name: "vm", IPv4: netip.MustParseAddr("10.20.1.4"), IPv6: netip.MustParseAddr("fd3c:9a1e:77b2:1::4"),
			NetNS: "/run/netns/zn-node1.shop", Interface: "zt0123456789", State: api.StateAttached,
			Kind: api.KindTap, MAC: "52:54:00:12:34:56",
		},
		{
			Name: "web", IPv4: netip.MustParseAddr("10.20.1.2"), IPv6: netip.MustParseAddr("fd3c:9a1e:77b2:1::2"),
			NetNS: "/proc/4711/ns/net", Interface: "eth1", State: api.StateNetNSGone,
		},
	}
}

func sampleStatus() api.NetworkStatus {
	return api.NetworkStatus{
		Name: "shop", NodeID: "node1", Generation: 3, Namespace: "zn-node1.shop",
		Interface: "zs-shop", Backend: "userspace", PID: 4242,
		PublicKey: apitest.Key(1), ListenPort: 40001,
		Subnet:  netip.MustParsePrefix("10.20.1.0/24"),
		Subnet6: netip.MustParsePrefix("fd3c:9a1e:77b2:1::/64"),
		Gateway: netip.MustParseAddr("10.20.1.1"), Gateway6: netip.MustParseAddr("fd3c:9a1e:77b2:1::1"),
		Workloads: 2, MTU: 1320, TooBigDrops: 17, LastTooBigDrop: testNow.Add(-90 * time.Second),
		Egress: true, EgressAddress: netip.MustParseAddr("198.18.0.1"),
		Peers: []api.PeerStatus{
			{
				Name: "node2", PublicKey: apitest.Key(2), Endpoint: "198.18.0.2:40007",
				AllowedIPs: []netip.Prefix{
					netip.MustParsePrefix("10.20.2.0/24"), netip.MustParsePrefix("fd3c:9a1e:77b2:2::/64"),
				},
				LastHandshake: testNow.Add(-12 * time.Second),
				RxBytes:       1234, TxBytes: 5_800_000,
			},
			{
				Name: "node3", PublicKey: apitest.Key(3),
				AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.20.3.0/24")},
			},
		},
		Problems: []string{"peer node3 has never completed a handshake"},
	}
}

func TestStatusTable(t *testing.T) {
	fake, socket := newFake(t)
	kernel := api.NetworkStatus{Name: "zoo", NodeID: "node1", Generation: 1, Interface: "zs-zoo", Backend: "kernel",
		Namespace: "zn-node1.zoo", Subnet: netip.MustParsePrefix("10.9.0.0/24")}
	fake.Statuses = []api.NetworkStatus{sampleStatus(), kernel}
	r := cli(t, "", "status", "--socket", socket)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, `network shop  generation 3  node node1
  interface    zs-shop
  mtu          1320
  too big      17 packets refused by the underlay (EMSGSIZE), the last 1m30s ago
  backend      userspace, data-plane pid 4242
  namespace    zn-node1.shop
  subnet       10.20.1.0/24, fd3c:9a1e:77b2:1::/64
  gateway      10.20.1.1, fd3c:9a1e:77b2:1::1
  listen port  40001
  public key   AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=
  workloads    2
  egress       on, source NAT to 198.18.0.1

  PEER   ENDPOINT          ALLOWED IPS                          HANDSHAKE  RX       TX
  node2  198.18.0.2:40007  10.20.2.0/24, fd3c:9a1e:77b2:2::/64  12s ago    1.2 KiB  5.5 MiB
  node3  -                 10.20.3.0/24                         never      0 B      0 B

  problems:
    - peer node3 has never completed a handshake

network zoo  generation 1  node node1
  interface    zs-zoo
  mtu          -
  backend      kernel
  namespace    zn-node1.zoo
  subnet       10.9.0.0/24
  gateway      -
  listen port  -
  public key   -
  workloads    0
  egress       none

  no peers
`, r.stdout)
}

func TestNetworkListTable(t *testing.T) {
	fake, socket := newFake(t)
	fake.Summaries = []api.NetworkSummary{
		{Name: "shop", Generation: 3, State: "applied", IPRange: netip.MustParsePrefix("10.20.0.0/16"),
			Subnet: netip.MustParsePrefix("10.20.1.0/24"), Nodes: 3, Workloads: 2},
		{Name: "zoo", State: "reserved"},
	}
	r := cli(t, "", "network", "list", "--socket", socket)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, `NAME  GENERATION  STATE     IP RANGE      SUBNET        NODES  WORKLOADS
shop  3           applied   10.20.0.0/16  10.20.1.0/24  3      2
zoo   0           reserved  -             -             0      0
`, r.stdout)
}

func TestWorkloadListTable(t *testing.T) {
	fake, socket := newFake(t)
	fake.WorkloadsOf = sampleWorkloads()
	r := cli(t, "", "workload", "list", "shop", "--socket", socket)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, `NAME  KIND   IPV4       IPV6                 MAC                INTERFACE     STATE       NETNS
db    netns  10.20.1.3  fd3c:9a1e:77b2:1::3  02:00:00:00:00:03  znet0         attached    /run/netns/db
vm    tap    10.20.1.4  fd3c:9a1e:77b2:1::4  52:54:00:12:34:56  zt0123456789  attached    /run/netns/zn-node1.shop
web   -      10.20.1.2  fd3c:9a1e:77b2:1::2  -                  eth1          netns-gone  /proc/4711/ns/net
`, r.stdout)
}

func TestReserveAndShowText(t *testing.T) {
	fake, socket := newFake(t)
	fake.Reservation = api.Reservation{NodeID: "node1", PublicKey: apitest.Key(1), ListenPort: 51820}
	s, err := spec.Decode(apitest.SpecDoc("shop", 3), apitest.NodeID)
	require.NoError(t, err)
	st := sampleStatus()
	st.Peers, st.Problems = nil, nil
	fake.Detail = api.NetworkDetail{Spec: s, Status: st}

	r := cli(t, "", "network", "reserve", "shop", "--socket", socket)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, `network      shop
node         node1
public key   AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=
listen port  51820
`, r.stdout)

	r = cli(t, "", "network", "show", "shop", "--socket", socket)
	require.Equal(t, 0, r.code, r.stderr)
	want := `spec shop  generation 3
  ip range    10.20.0.0/16
  ipv6 range  ` + spec.DeriveULA("shop").String() + `
  mtu         1420

  NODE   SUBNET        ENDPOINT          PUBLIC KEY
  node1  10.20.1.0/24  198.18.0.1:40001  AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=
  node2  10.20.2.0/24  198.18.0.2:40007  AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=
  node3  10.20.3.0/24  -                 AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=

network shop  generation 3  node node1
`
	assert.True(t, strings.HasPrefix(r.stdout, want), "got:\n%s", r.stdout)
	assert.Contains(t, r.stdout, "  no peers\n")

	fake.Detail = api.NetworkDetail{Status: api.NetworkStatus{Name: "zoo", NodeID: "node1"}}
	r = cli(t, "", "network", "show", "zoo", "--socket", socket)
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, strings.HasPrefix(r.stdout, "spec zoo: none applied yet (reserved only)\n\nnetwork zoo  generation 0  node node1\n"), r.stdout)
}

func TestAgeAndBytes(t *testing.T) {
	now := testNow
	ages := []struct {
		ago  time.Duration
		want string
	}{
		{0, "0s ago"},
		{-3 * time.Second, "0s ago"},
		{12*time.Second + 400*time.Millisecond, "12s ago"},
		{3*time.Minute + 4*time.Second, "3m4s ago"},
		{5*time.Hour + 2*time.Minute + 10*time.Second, "5h2m ago"},
		{50 * time.Hour, "2d2h ago"},
	}
	for _, a := range ages {
		assert.Equal(t, a.want, ageText(now, now.Add(-a.ago)), "%s", a.ago)
	}
	assert.Equal(t, "never", ageText(now, time.Time{}))

	sizes := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}, {1 << 62, "4096.0 PiB"},
	}
	for _, s := range sizes {
		assert.Equal(t, s.want, bytesText(s.n), "%d", s.n)
	}
}

func TestStatusDataplaneRestarts(t *testing.T) {
	fake, socket := newFake(t)
	st := api.NetworkStatus{Name: "shop", NodeID: "node1", Backend: "userspace", PID: 4343,
		DataplaneRestarts: 2, DataplaneLastExit: "killed by signal 9 (killed)", DataplaneLastExitAt: testNow.Add(-5 * time.Second)}
	fake.Statuses = []api.NetworkStatus{st}
	r := cli(t, "", "status", "--socket", socket)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "\n  data-plane restarts  2 (last death: killed by signal 9 (killed), 5s ago)\n")
}
