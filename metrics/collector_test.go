package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	itestutil "github.com/znet/znet/internal/testutil"
)

var now = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// fakeSource is a daemon with a fixed state. A network listed in block
// makes Status wait until the channel is closed (a stopped data plane).
type fakeSource struct {
	mu       sync.Mutex
	nets     []api.NetworkSummary
	statuses map[string]api.NetworkStatus
	access   map[string]int
	block    map[string]chan struct{}
	listErr  error
	calls    int            // of Status
	restarts map[string]int // watched data planes only
}

func (f *fakeSource) Networks(ctx context.Context) ([]api.NetworkSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.NetworkSummary(nil), f.nets...), f.listErr
}

func (f *fakeSource) Status(ctx context.Context, network string) ([]api.NetworkStatus, error) {
	f.mu.Lock()
	st, ok := f.statuses[network]
	wait := f.block[network]
	f.calls++
	f.mu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if !ok {
		return nil, errors.New("no such network")
	}
	return []api.NetworkStatus{st}, nil
}

func (f *fakeSource) DataplaneRestarts(network string) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.restarts[network]
	return n, ok
}

func (f *fakeSource) AccessPeers(ctx context.Context, network string) ([]api.AccessPeer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return make([]api.AccessPeer, f.access[network]), nil
}

// fixedState is a node with an applied network "shop" (two members, one
// up, one silent for 10 minutes, and an access peer) and a network
// "blog" that is only reserved.
func fixedState() *fakeSource {
	return &fakeSource{
		nets: []api.NetworkSummary{
			{Name: "blog", State: "reserved"},
			{Name: "shop", State: "applied", Generation: 3, Workloads: 2},
		},
		statuses: map[string]api.NetworkStatus{
			"blog": {Name: "blog", Peers: []api.PeerStatus{}},
			"shop": {
				Name: "shop", Generation: 3, PID: 4242,
				Peers: []api.PeerStatus{
					{Name: "access/alice", RxBytes: 5, TxBytes: 6},
					{Name: "node2", LastHandshake: now.Add(-30 * time.Second), RxBytes: 1000, TxBytes: 2000},
					{Name: "node3", LastHandshake: now.Add(-10 * time.Minute), RxBytes: 10, TxBytes: 20},
				},
				DNS: &api.DNSStatus{
					Records: 2,
					Members: []api.DNSMember{{ID: "node2", Records: 3}, {ID: "node3", Records: 1}},
					Queries: map[string]uint64{"NOERROR": 40, "NXDOMAIN": 2, "REFUSED": 1},
				},
			},
		},
		access:   map[string]int{"shop": 1},
		restarts: map[string]int{"shop": 2},
	}
}

func newTestCollector(t *testing.T, src Source, peers bool) *Collector {
	t.Helper()
	c := NewCollector(src, Options{
		Backend:       "userspace",
		Peers:         peers,
		Deadline:      200 * time.Millisecond,
		ResidentBytes: func(pid int) (uint64, error) { return uint64(pid) * 1024, nil },
		Now:           func() time.Time { return now },
	})
	t.Cleanup(func() { require.NoError(t, c.Close(context.Background())) })
	return c
}

const expectNetworks = `
# HELP znet_network_info A network on this node (always 1), with its applied generation and WireGuard backend.
# TYPE znet_network_info gauge
znet_network_info{backend="userspace",generation="0",network="blog"} 1
znet_network_info{backend="userspace",generation="3",network="shop"} 1
# HELP znet_network_peers Member nodes this node has as WireGuard peers in the network.
# TYPE znet_network_peers gauge
znet_network_peers{network="blog"} 0
znet_network_peers{network="shop"} 2
# HELP znet_network_peers_up Member peers with a handshake within the last 3 minutes.
# TYPE znet_network_peers_up gauge
znet_network_peers_up{network="blog"} 0
znet_network_peers_up{network="shop"} 1
# HELP znet_network_workloads Workloads attached to the network on this node.
# TYPE znet_network_workloads gauge
znet_network_workloads{network="blog"} 0
znet_network_workloads{network="shop"} 2
# HELP znet_network_access_peers Access peers (people's devices) that join the network through this node.
# TYPE znet_network_access_peers gauge
znet_network_access_peers{network="blog"} 0
znet_network_access_peers{network="shop"} 1
# HELP znet_network_rx_bytes_total Bytes received from all WireGuard peers of the network (resets when its data plane restarts).
# TYPE znet_network_rx_bytes_total counter
znet_network_rx_bytes_total{network="blog"} 0
znet_network_rx_bytes_total{network="shop"} 1015
# HELP znet_network_tx_bytes_total Bytes sent to all WireGuard peers of the network (resets when its data plane restarts).
# TYPE znet_network_tx_bytes_total counter
znet_network_tx_bytes_total{network="blog"} 0
znet_network_tx_bytes_total{network="shop"} 2026
# HELP znet_dataplane_restarts_total Restarts of the network's data plane after it died, since znetd started.
# TYPE znet_dataplane_restarts_total counter
znet_dataplane_restarts_total{network="shop"} 2
# HELP znet_dataplane_resident_bytes Resident memory of the network's userspace data-plane process.
# TYPE znet_dataplane_resident_bytes gauge
znet_dataplane_resident_bytes{network="shop"} 4.343808e+06
# HELP znet_dns_queries_total Answers of the network's resolver on this node by response code (resets when its data plane restarts).
# TYPE znet_dns_queries_total counter
znet_dns_queries_total{network="shop",rcode="NOERROR"} 40
znet_dns_queries_total{network="shop",rcode="NXDOMAIN"} 2
znet_dns_queries_total{network="shop",rcode="REFUSED"} 1
# HELP znet_dns_records Workload names the network's resolver on this node holds, its own and the other members'.
# TYPE znet_dns_records gauge
znet_dns_records{network="shop"} 6
# HELP znet_scrape_errors_total Reads of a network's state that failed or missed the scrape's deadline (its last known values were served).
# TYPE znet_scrape_errors_total counter
znet_scrape_errors_total 0
`

const expectPeers = `
# HELP znet_peer_last_handshake_timestamp_seconds Unix time of the peer's last handshake (0: never).
# TYPE znet_peer_last_handshake_timestamp_seconds gauge
znet_peer_last_handshake_timestamp_seconds{network="shop",peer="access/alice"} 0
znet_peer_last_handshake_timestamp_seconds{network="shop",peer="node2"} 1.79638557e+09
znet_peer_last_handshake_timestamp_seconds{network="shop",peer="node3"} 1.796385e+09
# HELP znet_peer_rx_bytes_total Bytes received from the peer.
# TYPE znet_peer_rx_bytes_total counter
znet_peer_rx_bytes_total{network="shop",peer="access/alice"} 5
znet_peer_rx_bytes_total{network="shop",peer="node2"} 1000
znet_peer_rx_bytes_total{network="shop",peer="node3"} 10
# HELP znet_peer_tx_bytes_total Bytes sent to the peer.
# TYPE znet_peer_tx_bytes_total counter
znet_peer_tx_bytes_total{network="shop",peer="access/alice"} 6
znet_peer_tx_bytes_total{network="shop",peer="node2"} 2000
znet_peer_tx_bytes_total{network="shop",peer="node3"} 20
`

var networkMetrics = []string{
	"znet_network_info", "znet_network_peers", "znet_network_peers_up", "znet_network_workloads",
	"znet_network_access_peers", "znet_network_rx_bytes_total", "znet_network_tx_bytes_total",
	"znet_dataplane_restarts_total", "znet_dataplane_resident_bytes", "znet_dns_queries_total", "znet_dns_records", "znet_scrape_errors_total",
}

var peerMetrics = []string{
	"znet_peer_last_handshake_timestamp_seconds", "znet_peer_rx_bytes_total", "znet_peer_tx_bytes_total",
}

func TestCollectorExposesFixedState(t *testing.T) {
	itestutil.GoroutineLeakCheck(t)
	c := newTestCollector(t, fixedState(), false)
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(expectNetworks), networkMetrics...))
	// Without --metrics-peers there is no per-peer series at all.
	n, err := testutil.GatherAndCount(registryOf(t, c), peerMetrics...)
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestCollectorExposesPeersWhenAsked(t *testing.T) {
	itestutil.GoroutineLeakCheck(t)
	c := newTestCollector(t, fixedState(), true)
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(expectPeers), peerMetrics...))
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(expectNetworks), networkMetrics...))
}

func TestCollectorPassesLint(t *testing.T) {
	c := newTestCollector(t, fixedState(), true)
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestCollectorServesLastValuesOfAStoppedDataPlane(t *testing.T) {
	itestutil.GoroutineLeakCheck(t)
	src := fixedState()
	c := newTestCollector(t, src, false)
	require.Equal(t, 2.0, valueOf(t, c, "znet_network_peers", "shop"))

	// shop's data plane stops, and meanwhile it lost a peer.
	stopped := make(chan struct{})
	src.mu.Lock()
	src.block = map[string]chan struct{}{"shop": stopped}
	st := src.statuses["shop"]
	st.Peers = st.Peers[:2]
	src.statuses["shop"] = st
	src.restarts["shop"] = 3 // known to the daemon, not asked of the data plane
	src.mu.Unlock()
	for scrape := 1; scrape <= 2; scrape++ {
		start := time.Now()
		assert.Equal(t, 2.0, valueOf(t, c, "znet_network_peers", "shop"), "the last known value")
		assert.Less(t, time.Since(start), time.Second, "a scrape waits for its deadline only")
		assert.Equal(t, float64(scrape), testutil.ToFloat64(c.errors))
	}
	assert.Equal(t, 3.0, valueOf(t, c, "znet_dataplane_restarts_total", "shop"), "fresh: the daemon knows it without the data plane")
	close(stopped) // it runs again: the read in flight ends, the next scrape is fresh
	require.Eventually(t, func() bool {
		return valueOf(t, c, "znet_network_peers", "shop") == 1
	}, 5*time.Second, 10*time.Millisecond)
}

func TestCollectorKeepsCountersOfAnUnreadDevice(t *testing.T) {
	src := fixedState()
	c := newTestCollector(t, src, false)
	require.Equal(t, 1015.0, valueOf(t, c, "znet_network_rx_bytes_total", "shop"))

	// The data plane does not answer: status shows a problem and no peer.
	src.mu.Lock()
	st := src.statuses["shop"]
	st.Peers, st.Problems = []api.PeerStatus{}, []string{"data plane not responding"}
	src.statuses["shop"] = st
	src.mu.Unlock()
	assert.Equal(t, 1015.0, valueOf(t, c, "znet_network_rx_bytes_total", "shop"), "no drop to 0 (a counter reset)")
	assert.Equal(t, 1.0, testutil.ToFloat64(c.errors))

	// A network whose spec lost its other members has no peer and no
	// problem: that is a reading.
	src.mu.Lock()
	st.Problems = nil
	src.statuses["shop"] = st
	src.mu.Unlock()
	assert.Equal(t, 0.0, valueOf(t, c, "znet_network_peers", "shop"))
	assert.Equal(t, 1.0, testutil.ToFloat64(c.errors))
}

func TestCollectorForgetsDeletedNetworks(t *testing.T) {
	src := fixedState()
	c := newTestCollector(t, src, false)
	require.Equal(t, 2, testutil.CollectAndCount(c, "znet_network_info"))
	src.mu.Lock()
	src.nets = src.nets[1:]
	src.mu.Unlock()
	assert.Equal(t, 1, testutil.CollectAndCount(c, "znet_network_info"))

	// A failed listing keeps what was known and counts an error.
	src.mu.Lock()
	src.listErr = errors.New("state unreadable")
	src.mu.Unlock()
	assert.Equal(t, 1, testutil.CollectAndCount(c, "znet_network_info"))
	assert.Equal(t, 1.0, testutil.ToFloat64(c.errors))
}

func TestCollectorStartsNoReadAfterClose(t *testing.T) {
	itestutil.GoroutineLeakCheck(t)
	src := fixedState()
	c := newTestCollector(t, src, false)
	require.Equal(t, 2.0, valueOf(t, c, "znet_network_peers", "shop"))
	require.NoError(t, c.Close(context.Background()))
	src.mu.Lock()
	calls := src.calls
	src.mu.Unlock()
	assert.Equal(t, 2.0, valueOf(t, c, "znet_network_peers", "shop"), "the last values")
	src.mu.Lock()
	defer src.mu.Unlock()
	assert.Equal(t, calls, src.calls, "no read after Close")
}

func TestParseVmRSS(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     uint64
		wantErr  bool
	}{
		{name: "ok", in: "Name:\tznetd\nVmRSS:\t    5132 kB\nThreads: 7\n", want: 5132 * 1024},
		{name: "missing", in: "Name:\tkthreadd\n", wantErr: true},
		{name: "bad unit", in: "VmRSS: 5 MB\n", wantErr: true},
		{name: "bad number", in: "VmRSS: x kB\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVmRSS([]byte(tc.in))
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// registryOf returns a registry holding only c.
func registryOf(t *testing.T, c *Collector) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	return reg
}

// valueOf scrapes c once and returns the value of the series name of
// network.
func valueOf(t *testing.T, c *Collector, name, network string) float64 {
	t.Helper()
	mfs, err := registryOf(t, c).Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "network" && l.GetValue() == network {
					if m.GetGauge() != nil {
						return m.GetGauge().GetValue()
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{network=%q}", name, network)
	return 0
}

// BenchmarkCollect500Networks is the collector's own cost of one scrape
// of a node with 500 networks of 3 members and an access peer each (the
// daemon's reads are the fake's, so nearly free).
func BenchmarkCollect500Networks(b *testing.B) {
	for _, peers := range []bool{false, true} {
		b.Run(fmt.Sprintf("peers=%v", peers), func(b *testing.B) {
			src := &fakeSource{statuses: map[string]api.NetworkStatus{}, access: map[string]int{}}
			shop := fixedState().statuses["shop"]
			for i := range 500 {
				name := fmt.Sprintf("net%d", i)
				src.nets = append(src.nets, api.NetworkSummary{Name: name, State: "applied", Generation: 1, Workloads: 4})
				st := shop
				st.Name = name
				src.statuses[name] = st
				src.access[name] = 1
			}
			c := NewCollector(src, Options{Backend: "userspace", Peers: peers, ResidentBytes: func(int) (uint64, error) { return 1 << 22, nil }})
			b.Cleanup(func() { _ = c.Close(context.Background()) })
			reg := prometheus.NewRegistry()
			require.NoError(b, reg.Register(c))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
