package metrics

import (
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Errors of a read of one network; they count in znet_scrape_errors_total.
var (
	errNoStatus     = errors.New("status answered no network")
	errDeviceUnread = errors.New("status shows no reading of the device")
)

var (
	descInfo = prometheus.NewDesc("znet_network_info",
		"A network on this node (always 1), with its applied generation and WireGuard backend.",
		[]string{"network", "generation", "backend"}, nil)
	descPeers      = netDesc("znet_network_peers", "Member nodes this node has as WireGuard peers in the network.")
	descPeersUp    = netDesc("znet_network_peers_up", "Member peers with a handshake within the last 3 minutes.")
	descWorkloads  = netDesc("znet_network_workloads", "Workloads attached to the network on this node.")
	descAccess     = netDesc("znet_network_access_peers", "Access peers (people's devices) that join the network through this node.")
	descRx         = netDesc("znet_network_rx_bytes_total", "Bytes received from all WireGuard peers of the network (resets when its data plane restarts).")
	descTx         = netDesc("znet_network_tx_bytes_total", "Bytes sent to all WireGuard peers of the network (resets when its data plane restarts).")
	descRestarts   = netDesc("znet_dataplane_restarts_total", "Restarts of the network's data plane after it died, since znetd started.")
	descRSS        = netDesc("znet_dataplane_resident_bytes", "Resident memory of the network's userspace data-plane process.")
	descDNSQueries = prometheus.NewDesc("znet_dns_queries_total",
		"Answers of the network's resolver on this node by response code (resets when its data plane restarts).",
		[]string{"network", "rcode"}, nil)
	descDNSRecords    = netDesc("znet_dns_records", "Workload names the network's resolver on this node holds, its own and the other members'.")
	descPeerHandshake = peerDesc("znet_peer_last_handshake_timestamp_seconds", "Unix time of the peer's last handshake (0: never).")
	descPeerRx        = peerDesc("znet_peer_rx_bytes_total", "Bytes received from the peer.")
	descPeerTx        = peerDesc("znet_peer_tx_bytes_total", "Bytes sent to the peer.")

	allDescs = []*prometheus.Desc{descInfo, descPeers, descPeersUp, descWorkloads, descAccess,
		descRx, descTx, descRestarts, descRSS, descDNSQueries, descDNSRecords, descPeerHandshake, descPeerRx, descPeerTx}
)

// netDesc describes a series labelled by network only, peerDesc one
// labelled by network and peer: most series are one or the other.
func netDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, []string{"network"}, nil)
}

func peerDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, []string{"network", "peer"}, nil)
}

// emit sends the series of one network: those from the state always, those
// from its live state once a read of it succeeded.
func (c *Collector) emit(ch chan<- prometheus.Metric, e entry, now time.Time) {
	name := e.summary.Name
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{name}, labels...)...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append([]string{name}, labels...)...)
	}
	gauge(descInfo, 1, uitoa(e.summary.Generation), c.opts.Backend)
	gauge(descWorkloads, float64(e.summary.Workloads))
	s := e.last
	if s == nil {
		return
	}
	gauge(descAccess, float64(s.access))
	var peers, up int
	var rx, tx int64
	for _, p := range s.status.Peers {
		rx += p.RxBytes
		tx += p.TxBytes
		if isAccess(p) {
			continue
		}
		peers++
		if !p.LastHandshake.IsZero() && now.Sub(p.LastHandshake) <= handshakeUp {
			up++
		}
	}
	gauge(descPeers, float64(peers))
	gauge(descPeersUp, float64(up))
	counter(descRx, float64(rx))
	counter(descTx, float64(tx))
	if s.rss > 0 {
		gauge(descRSS, float64(s.rss))
	}
	if dns := s.status.DNS; dns != nil {
		records := dns.Records
		for _, m := range dns.Members {
			records += m.Records
		}
		gauge(descDNSRecords, float64(records))
		for rcode, n := range dns.Queries {
			counter(descDNSQueries, float64(n), rcode)
		}
	}
	if c.opts.Peers {
		for _, p := range s.status.Peers {
			var hs float64
			if !p.LastHandshake.IsZero() {
				hs = float64(p.LastHandshake.UnixNano()) / 1e9
			}
			gauge(descPeerHandshake, hs, p.Name)
			counter(descPeerRx, float64(p.RxBytes), p.Name)
			counter(descPeerTx, float64(p.TxBytes), p.Name)
		}
	}
}

// uitoa formats a generation for a label.
func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }

// sortEntries orders entries by network name, so the exposition is stable.
func sortEntries(es []entry) {
	sort.Slice(es, func(i, j int) bool { return es[i].summary.Name < es[j].summary.Name })
}
