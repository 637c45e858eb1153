package apitest

import (
	"context"
	"slices"
	"sync"

	"github.com/znet/znet/api"
	"github.com/znet/znet/zos"
)

// ZosFake is a Fake that also implements api.ZosService, so a server over
// it has the /v1/zos routes: it keeps the workloads applied (as their
// api.ZosNetwork, in order) and records every zos call in Calls.
type ZosFake struct {
	*Fake

	zmu  sync.Mutex
	nets []api.ZosNetwork
	last *zos.Workload
}

var _ api.ZosService = (*ZosFake)(nil)

// NewZosFake returns a ZosFake over a fresh Fake.
func NewZosFake() *ZosFake { return &ZosFake{Fake: &Fake{}} }

// ZosApply implements api.ZosService.
func (f *ZosFake) ZosApply(_ context.Context, twin uint32, w *zos.Workload) (api.ZosNetwork, error) {
	n := api.ZosNetwork{Network: zos.NetworkName(twin, w.Name), Twin: twin, Name: w.Name, Version: w.Version}
	if err := f.Record("ZosApply", twin, w.Name); err != nil {
		return api.ZosNetwork{}, err
	}
	f.zmu.Lock()
	defer f.zmu.Unlock()
	f.nets, f.last = append(f.nets, n), w
	return n, nil
}

// ZosNetworks implements api.ZosService.
func (f *ZosFake) ZosNetworks(context.Context) ([]api.ZosNetwork, error) {
	if err := f.Record("ZosNetworks"); err != nil {
		return nil, err
	}
	f.zmu.Lock()
	defer f.zmu.Unlock()
	return slices.Clone(f.nets), nil
}

// ZosDelete implements api.ZosService: 404 for a workload never applied.
func (f *ZosFake) ZosDelete(_ context.Context, twin uint32, name string) error {
	if err := f.Record("ZosDelete", twin, name); err != nil {
		return err
	}
	f.zmu.Lock()
	defer f.zmu.Unlock()
	i := slices.IndexFunc(f.nets, func(n api.ZosNetwork) bool { return n.Twin == twin && n.Name == name })
	if i < 0 {
		return api.NotFound("name", "no zos workload %q of twin %d", name, twin)
	}
	f.nets = slices.Delete(f.nets, i, i+1)
	return nil
}

// LastWorkload returns the workload of the latest ZosApply (nil if none).
func (f *ZosFake) LastWorkload() *zos.Workload {
	f.zmu.Lock()
	defer f.zmu.Unlock()
	return f.last
}
