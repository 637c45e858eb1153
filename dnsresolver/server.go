package dnsresolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// errNoPath is returned (wrapped) when this node and a member have no
// gateway address family in common.
var errNoPath = errors.New("no gateway address family in common")

// servers are the DNS servers of one address, UDP and TCP.
type servers []*dns.Server

// listenAddrs returns the addresses the resolver listens on for cfg.
func (r *Resolver) listenAddrs(cfg Config) []netip.AddrPort {
	var out []netip.AddrPort
	for _, g := range []netip.Addr{cfg.Gateway4, cfg.Gateway6} {
		if g.IsValid() {
			out = append(out, netip.AddrPortFrom(g, uint16(r.opts.Port)))
		}
	}
	return out
}

// listen opens UDP and TCP sockets on addrs, inside opts.Do, and returns
// servers for them that are not serving yet. On error nothing stays open.
func (r *Resolver) listen(addrs []netip.AddrPort) (map[netip.AddrPort]servers, error) {
	if len(addrs) == 0 {
		return map[netip.AddrPort]servers{}, nil
	}
	var pcs []net.PacketConn
	var ls []net.Listener
	err := r.opts.Do(func() error {
		lc := net.ListenConfig{Control: freebind}
		for _, a := range addrs {
			pc, err := lc.ListenPacket(context.Background(), "udp", a.String())
			if err != nil {
				return fmt.Errorf("listening on udp %s: %w", a, err)
			}
			pcs = append(pcs, pc)
			l, err := lc.Listen(context.Background(), "tcp", a.String())
			if err != nil {
				return fmt.Errorf("listening on tcp %s: %w", a, err)
			}
			ls = append(ls, l)
		}
		return nil
	})
	if err != nil {
		for _, pc := range pcs {
			_ = pc.Close()
		}
		for _, l := range ls {
			_ = l.Close()
		}
		return nil, err
	}
	out := make(map[netip.AddrPort]servers, len(addrs))
	for i, a := range addrs {
		udp := r.newServer(&dns.Server{
			PacketConn:     newFastConn(r, pcs[i].(*net.UDPConn)),
			DecorateReader: func(rd dns.Reader) dns.Reader { return fastReader{rd} },
		})
		tcp := r.newServer(&dns.Server{
			Listener:    &limitListener{Listener: ls[i], limits: r.tcpLimits},
			IdleTimeout: func() time.Duration { return tcpIdleTimeout },
		})
		out[a] = servers{udp, tcp}
	}
	return out, nil
}

// newServer sets what every server of the resolver shares on srv: its own
// handler (never dns.DefaultServeMux), and acceptance of every request so
// that ServeDNS alone decides what is malformed.
func (r *Resolver) newServer(srv *dns.Server) *dns.Server {
	srv.Handler = r
	srv.UDPSize = dns.DefaultMsgSize
	srv.MsgAcceptFunc = func(h dns.Header) dns.MsgAcceptAction {
		if h.Bits&(1<<15) != 0 { // QR: a response, never answered
			return dns.MsgIgnore
		}
		return dns.MsgAccept
	}
	return srv
}

// serve starts srvs, each on a goroutine of r.wg, and returns once every
// one of them is serving (or has failed, which stops r).
func (r *Resolver) serve(srvs servers) {
	for _, srv := range srvs {
		started := make(chan struct{})
		exited := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer close(exited)
			if err := srv.ActivateAndServe(); err != nil {
				select {
				case r.failed <- fmt.Errorf("serving dns: %w", err):
				default:
				}
			}
		}()
		select {
		case <-started:
		case <-exited:
		}
	}
}

// shutdown stops srvs and waits until their handlers returned.
func (srvs servers) shutdown() {
	for _, srv := range srvs {
		_ = srv.Shutdown() // fails only for a server that never started
	}
}

// dial connects to member m over network ("udp" or "tcp"), from this
// node's gateway of the family they share, inside opts.Do.
func (r *Resolver) dial(ctx context.Context, network string, m Member) (net.Conn, error) {
	r.mu.Lock()
	self := r.cfg
	r.mu.Unlock()
	var local, remote netip.Addr
	switch {
	case self.Gateway4.IsValid() && m.Gateway4.IsValid():
		local, remote = self.Gateway4, m.Gateway4
	case self.Gateway6.IsValid() && m.Gateway6.IsValid():
		local, remote = self.Gateway6, m.Gateway6
	default:
		return nil, fmt.Errorf("reaching %s: %w", m.ID, errNoPath)
	}
	src := netip.AddrPortFrom(local, 0)
	d := net.Dialer{Control: freebind, LocalAddr: net.UDPAddrFromAddrPort(src)}
	if network == "tcp" {
		d.LocalAddr = net.TCPAddrFromAddrPort(src)
	}
	var c net.Conn
	err := r.opts.Do(func() error {
		var err error
		c, err = d.DialContext(ctx, network, netip.AddrPortFrom(remote, uint16(r.opts.Port)).String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reaching %s: %w", m.ID, err)
	}
	return c, nil
}

// freebind lets a socket bind to an address the namespace does not have
// (yet): the gateway may come up after the resolver, and a fresh IPv6
// address is unusable during duplicate address detection.
func freebind(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setting IP_FREEBIND: %w", serr)
	}
	return nil
}
