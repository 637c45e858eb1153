package apitest

import (
	"context"
	"sync"

	"github.com/znet/znet/api"
	"github.com/znet/znet/spec"
)

// Fake is an api.Service that records every call and answers with the
// canned values in its exported fields. Like the daemon, it checks names
// (api.CheckName) and listen ports (spec.CheckListenPort), which the
// server leaves to the Service; a call it refuses so is not recorded. Set the fields before serving; after
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

	Recorder

	mu         sync.Mutex
	lastSpec   *spec.Spec
	lastAttach api.AttachRequest
}

var _ api.Service = (*Fake)(nil)

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

// checkNames checks field and name pairs as the daemon does, so that a
// bad name gets the daemon's answer: the HTTP server leaves names to the
// Service. A refused call is not recorded.
func (f *Fake) checkNames(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := api.CheckName(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// Reserve implements api.Service.
func (f *Fake) Reserve(_ context.Context, network string) (api.Reservation, error) {
	if err := f.checkNames("name", network); err != nil {
		return api.Reservation{}, err
	}
	if err := f.Record("Reserve", network); err != nil {
		return api.Reservation{}, err
	}
	return f.Reservation, nil
}

// ReservePort implements api.Service.
func (f *Fake) ReservePort(_ context.Context, network string, port int) (api.Reservation, error) {
	if err := f.checkNames("name", network); err != nil {
		return api.Reservation{}, err
	}
	if err := spec.CheckListenPort("listen_port", port); err != nil {
		return api.Reservation{}, err
	}
	if err := f.Record("ReservePort", network, port); err != nil {
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
	if err := f.Record("Apply", s.Name, s.Generation); err != nil {
		return api.ApplyResult{}, err
	}
	if err := s.Validate(NodeID); err != nil {
		return api.ApplyResult{}, err
	}
	return f.ApplyResult, nil
}

// Networks implements api.Service.
func (f *Fake) Networks(context.Context) ([]api.NetworkSummary, error) {
	if err := f.Record("Networks"); err != nil {
		return nil, err
	}
	return f.Summaries, nil
}

// Network implements api.Service.
func (f *Fake) Network(_ context.Context, name string) (api.NetworkDetail, error) {
	if err := f.checkNames("name", name); err != nil {
		return api.NetworkDetail{}, err
	}
	if err := f.Record("Network", name); err != nil {
		return api.NetworkDetail{}, err
	}
	return f.Detail, nil
}

// DeleteNetwork implements api.Service.
func (f *Fake) DeleteNetwork(_ context.Context, name string, force bool) error {
	if err := f.checkNames("name", name); err != nil {
		return err
	}
	return f.Record("DeleteNetwork", name, force)
}

// Attach implements api.Service.
func (f *Fake) Attach(_ context.Context, network string, req api.AttachRequest) (api.Attachment, error) {
	if err := f.checkNames("name", network, "name", req.Name); err != nil {
		return api.Attachment{}, err
	}
	f.mu.Lock()
	f.lastAttach = req
	f.mu.Unlock()
	if err := f.Record("Attach", network, req.Name); err != nil {
		return api.Attachment{}, err
	}
	return f.Attachment, nil
}

// Detach implements api.Service.
func (f *Fake) Detach(_ context.Context, network, name string) error {
	if err := f.checkNames("name", network, "workload", name); err != nil {
		return err
	}
	return f.Record("Detach", network, name)
}

// Workloads implements api.Service.
func (f *Fake) Workloads(_ context.Context, network string) ([]api.Workload, error) {
	if err := f.checkNames("name", network); err != nil {
		return nil, err
	}
	if err := f.Record("Workloads", network); err != nil {
		return nil, err
	}
	return f.WorkloadsOf, nil
}

// Workload implements api.Service: it answers Attachment.
func (f *Fake) Workload(_ context.Context, network, name string) (api.Attachment, error) {
	if err := f.checkNames("name", network, "workload", name); err != nil {
		return api.Attachment{}, err
	}
	if err := f.Record("Workload", network, name); err != nil {
		return api.Attachment{}, err
	}
	return f.Attachment, nil
}

// Status implements api.Service.
func (f *Fake) Status(_ context.Context, network string) ([]api.NetworkStatus, error) {
	if network != "" {
		if err := f.checkNames("name", network); err != nil {
			return nil, err
		}
	}
	if err := f.Record("Status", network); err != nil {
		return nil, err
	}
	return f.Statuses, nil
}

// AddAccess implements api.Service.
func (f *Fake) AddAccess(_ context.Context, network string, req api.AccessRequest) (api.AccessGrant, error) {
	if err := f.checkNames("name", network, "name", req.Name); err != nil {
		return api.AccessGrant{}, err
	}
	if err := f.Record("AddAccess", network, req.Name, req.PublicKey); err != nil {
		return api.AccessGrant{}, err
	}
	return f.Grant, nil
}

// RemoveAccess implements api.Service.
func (f *Fake) RemoveAccess(_ context.Context, network, name string) error {
	if err := f.checkNames("name", network, "peer", name); err != nil {
		return err
	}
	return f.Record("RemoveAccess", network, name)
}

// AccessPeers implements api.Service.
func (f *Fake) AccessPeers(_ context.Context, network string) ([]api.AccessPeer, error) {
	if err := f.checkNames("name", network); err != nil {
		return nil, err
	}
	if err := f.Record("AccessPeers", network); err != nil {
		return nil, err
	}
	return f.Access, nil
}
