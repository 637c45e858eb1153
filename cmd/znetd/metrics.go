package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/znet/znet/daemon"
	"github.com/znet/znet/metrics"
)

// newLogger returns the logger for --log-format and --log-level.
func newLogger(o options) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, hopts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
}

// checkMetricsFlags checks --metrics and --metrics-peers.
func checkMetricsFlags(o options) error {
	if o.metrics == "" {
		if o.metricsPeers {
			return errors.New("--metrics-peers adds to --metrics; add --metrics ADDR:PORT")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(o.metrics); err != nil {
		return fmt.Errorf("--metrics %q: want ADDR:PORT: %w", o.metrics, err)
	}
	return nil
}

// metricsServer serves /metrics for --metrics.
type metricsServer struct {
	l    net.Listener
	http *http.Server
	col  *metrics.Collector
	node *metrics.Node
}

// listenMetrics listens on --metrics (before anything is touched, so a
// taken address stops znetd at once); nil when the flag is not set. Its
// node instruments are to be handed to the daemon and the API servers.
func listenMetrics(o options) (*metricsServer, error) {
	if o.metrics == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", o.metrics)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	return &metricsServer{l: l, node: metrics.NewNode()}, nil
}

// observeApply returns the daemon's apply hook (nil without metrics).
func (m *metricsServer) observeApply() func(time.Duration) {
	if m == nil {
		return nil
	}
	return m.node.ObserveApply
}

// instrument returns the API servers' wrapper (nil without metrics).
func (m *metricsServer) instrument() func(http.Handler) http.Handler {
	if m == nil {
		return nil
	}
	return m.node.Instrument
}

// serve starts serving d's metrics and sends the server's end to errc.
func (m *metricsServer) serve(o options, d *daemon.Daemon, backend string, log *slog.Logger, errc chan<- error) error {
	m.col = metrics.NewCollector(metricsSource{d}, metrics.Options{Backend: backend, Peers: o.metricsPeers})
	reg, err := metrics.Registry(m.col, m.node)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg))
	m.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		err := m.http.Serve(m.l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	log.Info("serving metrics", "addr", m.l.Addr().String(), "peers", o.metricsPeers)
	return nil
}

// metricsSource is the daemon as the collector reads it.
type metricsSource struct{ *daemon.Daemon }

// DataplaneRestarts implements metrics.Source with what the daemon's
// supervisor knows.
func (s metricsSource) DataplaneRestarts(network string) (int, bool) {
	h, ok := s.DataplaneHealth(network)
	return h.Restarts, ok
}

var _ metrics.Source = metricsSource{}

// closeUnserved closes the listener if znetd stopped before serving on it.
func (m *metricsServer) closeUnserved() {
	if m != nil && m.http == nil {
		_ = m.l.Close()
	}
}

// shutdown stops serving and the collector's reads, within ctx.
func (m *metricsServer) shutdown(ctx context.Context) error {
	if m.http == nil {
		return nil
	}
	err := m.http.Shutdown(ctx)
	return errors.Join(err, m.col.Close(ctx))
}
