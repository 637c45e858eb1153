package api_test

import (
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
)

func TestZosRoutes(t *testing.T) {
	checkGoroutines(t)
	f := apitest.NewZosFake()
	socket := apitest.Serve(t, f)
	c := api.NewClient(socket)
	workload, err := os.ReadFile("../zos/testdata/access.json")
	require.NoError(t, err)

	res, err := c.ZosApplyRaw(t.Context(), 42, workload)
	require.NoError(t, err)
	assert.Equal(t, api.ZosNetwork{Network: "z368907a44eec32e", Twin: 42, Name: "mynet"}, res)
	require.NotNil(t, f.LastWorkload())
	assert.Len(t, f.LastWorkload().Data.Peers, 3)
	list, err := c.ZosNetworks(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []api.ZosNetwork{res}, list)
	require.NoError(t, c.ZosDelete(t.Context(), 42, "mynet"))
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
