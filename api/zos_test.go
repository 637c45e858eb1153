package api_test

import (
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
	"github.com/znet/znet/zos"
)

// zosFake is a Fake that also serves zos workloads, remembering the last.
type zosFake struct {
	*apitest.Fake
	twin uint32
	last *zos.Workload
}

func (f *zosFake) ZosApply(_ context.Context, twin uint32, w *zos.Workload) (api.ZosNetwork, error) {
	f.twin, f.last = twin, w
	return api.ZosNetwork{Network: zos.NetworkName(twin, w.Name), Twin: twin, Name: w.Name, Version: w.Version}, nil
}

func (f *zosFake) ZosNetworks(context.Context) ([]api.ZosNetwork, error) { return nil, nil }

func (f *zosFake) ZosDelete(_ context.Context, twin uint32, name string) error {
	return api.NotFound("name", "no zos workload %q of twin %d", name, twin)
}

func TestZosRoutes(t *testing.T) {
	checkGoroutines(t)
	f := &zosFake{Fake: &apitest.Fake{}}
	socket := apitest.Serve(t, f)
	c := api.NewClient(socket)
	workload, err := os.ReadFile("../zos/testdata/access.json")
	require.NoError(t, err)

	res, err := c.ZosApplyRaw(t.Context(), 42, workload)
	require.NoError(t, err)
	assert.Equal(t, api.ZosNetwork{Network: "z368907a44eec32e", Twin: 42, Name: "mynet"}, res)
	assert.Equal(t, uint32(42), f.twin)
	require.NotNil(t, f.last)
	assert.Len(t, f.last.Data.Peers, 3)

	list, err := c.ZosNetworks(t.Context())
	require.NoError(t, err)
	assert.Empty(t, list)
	a := rawDo(t, socket, http.MethodGet, "/v1/zos", nil)
	assert.Equal(t, "[]\n", string(a.body), "an empty list is [], not null")

	err = c.ZosDelete(t.Context(), 42, "my net/with slash")
	require.ErrorIs(t, err, api.ErrNotFound)
	assert.Contains(t, err.Error(), `"my net/with slash"`, "the name reaches the service unchanged")

	for _, tt := range []struct {
		method, path string
		body         []byte
		status       int
		field        string
	}{
		{http.MethodPost, "/v1/zos/0", workload, http.StatusBadRequest, "twin"},
		{http.MethodPost, "/v1/zos/4294967296", workload, http.StatusBadRequest, "twin"},
		{http.MethodPost, "/v1/zos/x", workload, http.StatusBadRequest, "twin"},
		{http.MethodPost, "/v1/zos/42", []byte(`{"version":0,"name":"n","type":"network","data":{"ip_range":7}}`), http.StatusBadRequest, "data.ip_range"},
		{http.MethodDelete, "/v1/zos/0/mynet", nil, http.StatusBadRequest, "twin"},
	} {
		a := rawDo(t, socket, tt.method, tt.path, tt.body)
		assert.Equal(t, tt.status, a.status, "%s %s: %s", tt.method, tt.path, a.body)
		assert.Equal(t, tt.field, a.err.Field, "%s %s", tt.method, tt.path)
	}
}

// TestNoZosRoutesWithoutZosService: a service without zos support has no
// /v1/zos paths at all.
func TestNoZosRoutesWithoutZosService(t *testing.T) {
	_, _, socket := newFixture(t)
	a := rawDo(t, socket, http.MethodGet, "/v1/zos", nil)
	assert.Equal(t, http.StatusNotFound, a.status)
}
