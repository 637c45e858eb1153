// Command znetd is the znet node daemon: it keeps this node's networks,
// serves the API on a Unix socket (and, with --listen, over TLS with a
// bearer token on a TCP address) and runs the data planes. Run as
// `znetd dataplane ...` it is one network's userspace WireGuard data plane
// (started by znetd itself, never by hand); znetd prefers the smaller
// znetd-dataplane program for that when it lies next to znetd.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/znet/znet/api"
	"github.com/znet/znet/daemon"
	"github.com/znet/znet/dataplane"
	"github.com/znet/znet/dnsresolver/dnsclient"
	"github.com/znet/znet/nodelock"
	"github.com/znet/znet/overlay"
	"github.com/znet/znet/store"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "dataplane" || os.Args[1] == "resolver") {
		os.Exit(dataplane.Main(os.Args[1:]))
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "znetd:", err)
		os.Exit(1)
	}
}

type options struct {
	nodeID    string
	stateDir  string
	socket    string
	lockDir   string
	wireguard string
	logLevel  string
	logFormat string
	// The optional Prometheus endpoint: off unless metrics is set.
	metrics      string
	metricsPeers bool
	// The optional remote API: off unless listen is set.
	listen    string
	tlsCert   string
	tlsKey    string
	tokenFile string
	// importKeys accepts zos workloads, which carry the node's private key.
	importKeys bool
	// dnsUpstreams are where egress networks' names outside their zone go.
	dnsUpstreams []netip.AddrPort
}

func parseFlags(args []string) (options, error) {
	host, _ := os.Hostname()
	o := options{}
	fs := flag.NewFlagSet("znetd", flag.ContinueOnError)
	fs.StringVar(&o.nodeID, "node-id", defaultNodeID(host), "this node's id (a DNS label)")
	fs.StringVar(&o.stateDir, "state-dir", "/var/lib/znet", "where the state file, pid files and data-plane logs live")
	fs.StringVar(&o.socket, "socket", "/run/znet/znetd.sock", "the API's Unix socket")
	fs.StringVar(&o.lockDir, "lock-dir", nodelock.DefaultDir, "machine-wide `DIR` of the node-id locks (node-<id>.lock); every znetd of the machine must use the same")
	fs.StringVar(&o.wireguard, "wireguard", "auto", "WireGuard backend: auto, kernel or userspace")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log as text or json (one object per line, for collectors)")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics at /metrics on this `ADDR:PORT` (off by default; bind a management address)")
	fs.BoolVar(&o.metricsPeers, "metrics-peers", false, "add per-peer series to --metrics (they grow with networks × members)")
	fs.StringVar(&o.listen, "listen", "", "also serve the API over TLS on this TCP `ADDR` (host:port; off by default)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "the PEM certificate `FILE` of the --listen API")
	fs.StringVar(&o.tlsKey, "tls-key", "", "the PEM private key `FILE` of the --listen API")
	fs.BoolVar(&o.importKeys, "allow-imported-keys", false, "accept zos network workloads, which bring this node's private key (made elsewhere)")
	fs.StringVar(&o.tokenFile, "token-file", "", "`FILE` holding the bearer token the --listen API requires (mode 0600 or stricter)")
	upstreams := fs.String("dns-upstream", "", "`ADDR,...` (each ADDR or ADDR:PORT) resolving names outside a zone for networks with egress (default: the nameservers of /etc/resolv.conf)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	if o.dnsUpstreams, err = dnsUpstreams(*upstreams, "/etc/resolv.conf"); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := checkMetricsFlags(o); err != nil {
		return o, err
	}
	if o.listen == "" {
		for _, f := range []struct{ name, val string }{{"tls-cert", o.tlsCert}, {"tls-key", o.tlsKey}, {"token-file", o.tokenFile}} {
			if f.val != "" {
				return o, fmt.Errorf("--%s is only for the remote API; add --listen ADDR", f.name)
			}
		}
		return o, nil
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return o, fmt.Errorf("--listen %q: want host:port: %w", o.listen, err)
	}
	for _, f := range []struct{ name, val string }{{"tls-cert", o.tlsCert}, {"tls-key", o.tlsKey}, {"token-file", o.tokenFile}} {
		if f.val == "" {
			return o, fmt.Errorf("--listen needs --%s (the remote API always uses TLS and a bearer token)", f.name)
		}
	}
	return o, nil
}

// remote is what the optional TCP API needs, loaded from the flags' files.
type remote struct {
	tls   *tls.Config
	token string
}

// loadRemote reads the certificate, key and token of the --listen API; it
// returns nil when --listen is not set.
func loadRemote(o options) (*remote, error) {
	if o.listen == "" {
		return nil, nil
	}
	cfg, err := api.ServerTLSConfig(o.tlsCert, o.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	token, err := api.ReadTokenFile(o.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("--token-file: %w", err)
	}
	return &remote{tls: cfg, token: token}, nil
}

// defaultNodeID turns the host name into a DNS label.
func defaultNodeID(host string) string {
	host = strings.ToLower(strings.SplitN(host, ".", 2)[0])
	var b strings.Builder
	for _, r := range host {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			b.WriteRune(r)
		}
	}
	id := strings.Trim(b.String(), "-")
	if len(id) > 32 {
		id = strings.Trim(id[:32], "-")
	}
	if id == "" {
		id = "node"
	}
	return id
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	log, err := newLogger(o)
	if err != nil {
		return err
	}
	log = log.With("node", o.nodeID)

	rem, err := loadRemote(o)
	if err != nil {
		return err
	}
	// Before anything else: a second znetd with this node id (another
	// state dir by mistake) would take the first one's namespaces for
	// orphans and delete them.
	lock, err := nodelock.Acquire(o.lockDir, o.nodeID, o.stateDir)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Close() }()

	// Listen first: a second znetd started by mistake must stop before it
	// touches anything. Requests wait in the backlog until recovery is done.
	l, err := api.ListenUnix(o.socket)
	if err != nil {
		return err
	}
	defer func() { _ = l.Close() }()
	var tcpL net.Listener
	if rem != nil {
		if tcpL, err = api.ListenTCP(o.listen, rem.tls); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
		defer func() { _ = tcpL.Close() }()
	}
	mets, err := listenMetrics(o)
	if err != nil {
		return err
	}
	defer mets.closeUnserved()
	st, err := store.Open(o.stateDir)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	runDir := filepath.Join(o.stateDir, "run")
	backend, err := overlay.New(o.wireguard, overlay.Options{
		RunDir: runDir,
		Logger: log,
	})
	if err != nil {
		return fmt.Errorf("--wireguard %s: %w", o.wireguard, err)
	}
	defer closeBackend(backend)
	resolvers, err := dataplane.NewResolvers(dataplane.ResolverOptions{RunDir: runDir, Logger: log})
	if err != nil {
		return err
	}
	defer func() { _ = resolvers.Close() }()
	dns := &dnsclient.Sockets{Path: func(network string) string {
		return dataplane.ResolverSocket(runDir, overlay.IfName(o.nodeID, network))
	}}
	// Before any data plane starts: their ephemeral underlay sockets must
	// not take the networks' listen ports (see ReservePortRange). A node
	// whose /proc/sys is read-only still works, with that risk logged.
	if err := daemon.ReservePortRange(daemon.ReservedPortsSysctl, daemon.DefaultPortMin, daemon.DefaultPortMax); err != nil {
		log.Warn("listen ports not reserved: an ephemeral socket may take one", "err", err)
	}
	d, err := daemon.New(daemon.Config{NodeID: o.nodeID, Store: st, Backend: backend, Logger: log, AllowImportedKeys: o.importKeys,
		MarkDir: filepath.Join(o.stateDir, "netns"), ObserveApply: mets.observeApply(), DNSUpstreams: o.dnsUpstreams,
		DNS: dns, Resolvers: resolvers})
	if err != nil {
		return err
	}
	defer d.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	if err := d.Recover(ctx); err != nil {
		// Keep serving: the healthy networks work, status explains the rest.
		log.Error("recovery incomplete", "err", err)
	}
	log.Info("recovered state", "took", time.Since(start).Round(time.Millisecond), "backend", backend.Kind())

	servers := []*api.Server{api.NewServer(d, api.ServerOptions{Logger: log, Instrument: mets.instrument()})}
	errc := make(chan error, 3)
	go func() { errc <- servers[0].Serve(l) }()
	log.Info("serving", "socket", o.socket)
	if tcpL != nil {
		tsrv := api.NewServer(d, api.ServerOptions{Logger: log, Token: rem.token, Instrument: mets.instrument()})
		servers = append(servers, tsrv)
		go func() { errc <- tsrv.Serve(tcpL) }()
		log.Info("serving the remote API", "addr", tcpL.Addr().String())
	}
	if mets != nil {
		if err := mets.serve(o, d, backend.Kind(), log, errc); err != nil {
			return err
		}
	}

	var serveErr error
	select {
	case serveErr = <-errc:
		log.Error("serving stopped", "err", serveErr)
	case <-ctx.Done():
	}
	log.Info("shutting down; data planes keep running")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) && serveErr == nil {
			serveErr = err
		}
	}
	if mets != nil {
		if err := mets.shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) && serveErr == nil {
			serveErr = err
		}
	}
	_ = os.Remove(o.socket)
	return serveErr
}

func closeBackend(b overlay.Backend) {
	if c, ok := b.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}
