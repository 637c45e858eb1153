package daemon

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/znet/znet/api"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/overlay"
	"github.com/znet/znet/store"
)

// handshakeStale is how old a handshake may be before status calls the
// link down (WireGuard re-keys every 2 minutes while traffic flows, and
// keepalives make traffic flow).
const handshakeStale = 3 * time.Minute

// statusTimeout bounds what status asks one network's data plane (its
// device and its resolver), so that a stopped or wedged data plane costs
// `znet status` this long and is named, instead of hanging it.
const statusTimeout = 800 * time.Millisecond

// statusParallel is how many networks status reads at once.
const statusParallel = 16

// statuses reads the live state of every network in nets, several at a
// time, so that unresponsive data planes do not add up their timeouts.
func (d *Daemon) statuses(ctx context.Context, nets []*store.Network, wls map[string][]*store.Workload) []api.NetworkStatus {
	out := make([]api.NetworkStatus, len(nets))
	sem := make(chan struct{}, statusParallel)
	var wg sync.WaitGroup
	for i, n := range nets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = d.status(ctx, n, wls[n.Name])
		}()
	}
	wg.Wait()
	return out
}

// status reads the live state of n and explains what is wrong.
func (d *Daemon) status(ctx context.Context, n *store.Network, wls []*store.Workload) api.NetworkStatus {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	st := api.NetworkStatus{
		Name:       n.Name,
		NodeID:     d.nodeID,
		Namespace:  d.nsName(n.Name),
		Interface:  overlay.IfName(d.nodeID, n.Name),
		Backend:    d.backend.Kind(),
		PublicKey:  n.PublicKey,
		ListenPort: n.ListenPort,
		Workloads:  len(wls),
		Peers:      []api.PeerStatus{},
	}
	if n.Spec == nil {
		st.Problems = append(st.Problems, "reserved only: no spec applied yet")
		return st
	}
	st.Generation = n.Spec.Generation
	st.Egress = n.Spec.Egress
	if addr, problem := d.egressStatus(n); problem != "" {
		st.Problems = append(st.Problems, problem)
	} else {
		st.EgressAddress = addr
	}
	if sub, err := d.subnetsOf(n.Spec); err == nil {
		st.Subnet, st.Subnet6, st.Gateway, st.Gateway6 = sub.V4, sub.V6, sub.Gateway4, sub.Gateway6
	}
	if !namespaces.Exists(st.Namespace) {
		st.Problems = append(st.Problems, fmt.Sprintf("namespace %s is missing; re-apply or restart znetd to rebuild", st.Namespace))
		return st
	}
	st.PID = d.backend.PID(d.device(n.Name, n.Spec.MTU))
	if problem := d.mtuStatus(&st, d.device(n.Name, n.Spec.MTU), time.Now()); problem != "" {
		st.Problems = append(st.Problems, problem)
	}
	st.Problems = append(st.Problems, d.healthStatus(&st)...)
	dev, err := d.backend.Show(ctx, d.device(n.Name, n.Spec.MTU))
	if errors.Is(err, overlay.ErrNotResponding) {
		st.Problems = append(st.Problems, fmt.Sprintf("data plane not responding (pid %d): no answer within %s; it is stopped or overloaded", st.PID, statusTimeout))
		return st
	}
	if err != nil {
		st.Problems = append(st.Problems, fmt.Sprintf("wireguard device: %v", err))
		return st
	}
	names := map[string]string{}
	for _, node := range n.Spec.Nodes {
		names[node.PublicKey] = node.ID
	}
	acc, _ := d.access(n.Name)
	for _, a := range acc {
		names[a.PublicKey] = "access/" + a.Name
	}
	now := time.Now()
	for _, p := range dev.Peers {
		ps := api.PeerStatus{
			Name:          names[p.PublicKey.String()],
			PublicKey:     p.PublicKey.String(),
			LastHandshake: p.LastHandshakeTime,
			RxBytes:       p.ReceiveBytes,
			TxBytes:       p.TransmitBytes,
		}
		if p.Endpoint != nil {
			ps.Endpoint = p.Endpoint.String()
		}
		for _, a := range p.AllowedIPs {
			ps.AllowedIPs = append(ps.AllowedIPs, prefixOf(&a))
		}
		access := strings.HasPrefix(ps.Name, "access/")
		switch {
		case access:
			// A person's device comes and goes; its silence is no problem.
		case ps.LastHandshake.IsZero():
			st.Problems = append(st.Problems, fmt.Sprintf("peer %s: no handshake yet", ps.Name))
		case now.Sub(ps.LastHandshake) > handshakeStale:
			st.Problems = append(st.Problems, fmt.Sprintf("peer %s: last handshake %s ago", ps.Name, now.Sub(ps.LastHandshake).Round(time.Second)))
		}
		st.Peers = append(st.Peers, ps)
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Name < st.Peers[j].Name })
	var problem string
	if st.DNS, problem = d.dnsStatus(ctx, n); problem != "" {
		st.Problems = append(st.Problems, problem)
	}
	for _, m := range stDNSMembers(st.DNS) {
		if m.Error != "" {
			st.Problems = append(st.Problems, fmt.Sprintf("resolver: member %s: %s", m.ID, m.Error))
		}
	}
	for _, w := range wls {
		if p := stateProblem(w, d.workloadState(w)); p != "" {
			st.Problems = append(st.Problems, p)
		}
	}
	return st
}

// healthStatus fills in what the supervisor knows of st's data plane and
// returns the problems it and the resolver-only process's supervisor show:
// a restart waiting out its backoff, or one that failed.
func (d *Daemon) healthStatus(st *api.NetworkStatus) []string {
	var problems []string
	if h, ok := d.DataplaneHealth(st.Name); ok {
		st.DataplaneRestarts, st.DataplaneLastExit, st.DataplaneLastExitAt = h.Restarts, h.LastExit, h.LastExitAt
		problems = healthProblems("data plane", h)
	}
	if h, ok := d.resolverSup.health(st.Name); ok {
		problems = append(problems, healthProblems("resolver", h)...)
	}
	return problems
}

// healthProblems words what a supervisor's record h of a process (what)
// shows is wrong.
func healthProblems(what string, h Health) []string {
	var problems []string
	if !h.NextRestart.IsZero() {
		problems = append(problems, fmt.Sprintf("%s keeps dying (last: %s); next restart in %s",
			what, h.LastExit, time.Until(h.NextRestart).Round(time.Second)))
	}
	if h.RestartError != "" {
		problems = append(problems, fmt.Sprintf("restarting the %s failed: %s", what, h.RestartError))
	}
	return problems
}

func stDNSMembers(s *api.DNSStatus) []api.DNSMember {
	if s == nil {
		return nil
	}
	return s.Members
}
