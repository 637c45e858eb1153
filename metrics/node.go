package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Node holds the per-node instruments: the API server counts its requests
// with Instrument and the daemon times its applies with ObserveApply.
type Node struct {
	apiRequests *prometheus.CounterVec
	apply       prometheus.Histogram
}

// NewNode returns the per-node instruments, not registered yet.
func NewNode() *Node {
	return &Node{
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "znet_api_requests_total",
			Help: "API requests answered, by HTTP method and status code.",
		}, []string{"method", "code"}),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "znet_apply_duration_seconds",
			Help: "How long applying a network spec took, failed ones included.",
			// From a no-op re-apply (ms) to building a namespace and a
			// data plane on a loaded machine (tens of seconds).
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
}

// Instrument wraps an API handler so that every answer is counted.
func (n *Node) Instrument(h http.Handler) http.Handler {
	return promhttp.InstrumentHandlerCounter(n.apiRequests, h)
}

// ObserveApply records one apply that took d.
func (n *Node) ObserveApply(d time.Duration) { n.apply.Observe(d.Seconds()) }

// Registry returns a registry with the networks' collector c, the
// per-node instruments n, and the Go runtime's and znetd's own process
// metrics.
func Registry(c *Collector, n *Node) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, col := range []prometheus.Collector{
		c, n.apiRequests, n.apply,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// Handler serves reg's metrics in the Prometheus exposition formats. A
// scrape that asks for more than the collector's deadline allows still
// gets an answer: the collector never waits longer.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
