package apitest

import (
	"context"
	"fmt"
	"sync"

	"github.com/znet/znet/api"
	"github.com/znet/znet/spec"
)

// Fake is an api.Service that records every call and answers with the
// canned values in its exported fields. Set the fields before serving; after
// that only use Calls, SetErr and the Last* getters, which are safe for
// concurrent use.
type Fake struct {
	Reservation api.Reservation
	ApplyResult api.ApplyResult
	Summaries   []api.NetworkSummary
	Detail      api.NetworkDetail
	Attachment  api.Attachment
	WorkloadsOf []api.Workload
	Statuses    []api.NetworkStatus
	Grant       api.AccessGrant
	Access      []api.AccessPeer

	mu         sync.Mutex
	calls      []string
	errs       map[string]error
	lastSpec   *spec.Spec
	lastAttach api.AttachRequest
}

var _ api.Service = (*Fake)(nil)

// SetErr makes the method named method (e.g. "Apply") return err from now
// on; a nil err clears it.
func (f *Fake) SetErr(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errs == nil {
		f.errs = map[string]error{}
	}
	f.errs[method] = err
}

// Calls returns the calls so far, one line each, like "Detach(shop, web)".
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// LastSpec returns the spec of the latest Apply call (nil if none).
func (f *Fake) LastSpec() *spec.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastSpec.Clone()
}

// LastAttach returns the request of the latest Attach call.
func (f *Fake) LastAttach() api.AttachRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastAttach
}

// record notes a call and returns the error set for method.
func (f *Fake) record(method string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	line := method + "("
	for i, a := range args {
		if i > 0 {
			line += ", "
		}
		line += fmt.Sprint(a)
	}
	f.calls = append(f.calls, line+")")
	return f.errs[method]
}

// Reserve implements api.Service.
func (f *Fake) Reserve(_ context.Context, network string) (api.Reservation, error) {
	if err := f.record("Reserve", network); err != nil {
		return api.Reservation{}, err
	}
	return f.Reservation, nil
}

// ReservePort implements api.Service.
func (f *Fake) ReservePort(_ context.Context, network string, port int) (api.Reservation, error) {
	if err := f.record("ReservePort", network, port); err != nil {
		return api.Reservation{}, err
	}
	return f.Reservation, nil
}

// Apply implements api.Service. Like the daemon, it fills in the spec's
// defaults and validates it for node NodeID (the server only parses), so
// a bad spec gets the daemon's answer; LastSpec is the spec with defaults.
func (f *Fake) Apply(_ context.Context, in *spec.Spec) (api.ApplyResult, error) {
	s := in.Clone()
	s.SetDefaults()
	f.mu.Lock()
	f.lastSpec = s.Clone()
	f.mu.Unlock()
	if err := f.record("Apply", s.Name, s.Generation); err != nil {
		return api.ApplyResult{}, err
	}
	if err := s.Validate(NodeID); err != nil {
		return api.ApplyResult{}, err
	}
	return f.ApplyResult, nil
}

// Networks implements api.Service.
func (f *Fake) Networks(context.Context) ([]api.NetworkSummary, error) {
	if err := f.record("Networks"); err != nil {
		return nil, err
	}
	return f.Summaries, nil
}

// Network implements api.Service.
func (f *Fake) Network(_ context.Context, name string) (api.NetworkDetail, error) {
	if err := f.record("Network", name); err != nil {
		return api.NetworkDetail{}, err
	}
	return f.Detail, nil
}

// DeleteNetwork implements api.Service.
func (f *Fake) DeleteNetwork(_ context.Context, name string, force bool) error {
	return f.record("DeleteNetwork", name, force)
}

// Attach implements api.Service.
func (f *Fake) Attach(_ context.Context, network string, req api.AttachRequest) (api.Attachment, error) {
	f.mu.Lock()
	f.lastAttach = req
	f.mu.Unlock()
	if err := f.record("Attach", network, req.Name); err != nil {
		return api.Attachment{}, err
	}
	return f.Attachment, nil
}

// Detach implements api.Service.
func (f *Fake) Detach(_ context.Context, network, name string) error {
	return f.record("Detach", network, name)
}

// Workloads implements api.Service.
func (f *Fake) Workloads(_ context.Context, network string) ([]api.Workload, error) {
	if err := f.record("Workloads", network); err != nil {
		return nil, err
	}
	return f.WorkloadsOf, nil
}

// Workload implements api.Service: it answers Attachment.
func (f *Fake) Workload(_ context.Context, network, name string) (api.Attachment, error) {
	if err := f.record("Workload", network, name); err != nil {
		return api.Attachment{}, err
	}
	return f.Attachment, nil
}

// Status implements api.Service.
func (f *Fake) Status(_ context.Context, network string) ([]api.NetworkStatus, error) {
	if err := f.record("Status", network); err != nil {
		return nil, err
	}
	return f.Statuses, nil
}

// AddAccess implements api.Service.
func (f *Fake) AddAccess(_ context.Context, network string, req api.AccessRequest) (api.AccessGrant, error) {
	if err := f.record("AddAccess", network, req.Name, req.PublicKey); err != nil {
		return api.AccessGrant{}, err
	}
	return f.Grant, nil
}

// RemoveAccess implements api.Service.
func (f *Fake) RemoveAccess(_ context.Context, network, name string) error {
	return f.record("RemoveAccess", network, name)
}

// AccessPeers implements api.Service.
func (f *Fake) AccessPeers(_ context.Context, network string) ([]api.AccessPeer, error) {
	if err := f.record("AccessPeers", network); err != nil {
		return nil, err
	}
	return f.Access, nil
}
