package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/znet/znet/zos"
)

// ZosService is what znetd does for zos: realize its network workloads.
// A Service that also implements it gets the /v1/zos routes. Every method
// is safe for concurrent use.
type ZosService interface {
	// ZosApply creates or updates the network realizing twin's workload w;
	// w.Version orders updates as a spec's generation does.
	ZosApply(ctx context.Context, twin uint32, w *zos.Workload) (ZosNetwork, error)
	// ZosNetworks lists the networks realizing zos workloads, sorted by
	// twin and name.
	ZosNetworks(ctx context.Context) ([]ZosNetwork, error)
	// ZosDelete removes the network realizing twin's workload name, with
	// everything attached to it.
	ZosDelete(ctx context.Context, twin uint32, name string) error
}

// ZosNetwork is a zos workload and the znet network realizing it.
type ZosNetwork struct {
	Network string `json:"network"`
	Twin    uint32 `json:"twin"`
	Name    string `json:"name"`
	Version uint64 `json:"version"`
}

// zosRoutes adds the /v1/zos routes for svc.
func (s *Server) zosRoutes(handle func(string, handlerFunc), svc ZosService) {
	handle("POST /v1/zos/{twin}", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		twin, err := pathTwin(r)
		if err != nil {
			return 0, nil, err
		}
		return withBody(w, r, zos.Decode, func(wl *zos.Workload) (ZosNetwork, error) {
			return svc.ZosApply(r.Context(), twin, wl)
		})
	})
	handle("GET /v1/zos", func(_ http.ResponseWriter, r *http.Request) (int, any, error) {
		return listOf(svc.ZosNetworks(r.Context()))
	})
	handle("DELETE /v1/zos/{twin}/{name}", func(_ http.ResponseWriter, r *http.Request) (int, any, error) {
		twin, err := pathTwin(r)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusNoContent, nil, svc.ZosDelete(r.Context(), twin, r.PathValue("name"))
	})
}

// pathTwin returns the twin id in the path.
func pathTwin(r *http.Request) (uint32, error) {
	text := r.PathValue("twin")
	v, err := strconv.ParseUint(text, 10, 32)
	if err != nil || v == 0 {
		return 0, Invalid("twin", "%q is not a twin id (1-%d)", text, uint32(1<<32-1))
	}
	return uint32(v), nil
}

// ZosApplyRaw sends a workload document exactly as given, so the daemon
// does all the checking and names the bad field.
func (c *Client) ZosApplyRaw(ctx context.Context, twin uint32, data []byte) (ZosNetwork, error) {
	var res ZosNetwork
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/zos/%d", twin), data, &res)
	return res, err
}

// ZosNetworks asks ZosService.ZosNetworks. (The client sends workloads as
// documents, with ZosApplyRaw, so it is no ZosService itself.)
func (c *Client) ZosNetworks(ctx context.Context) ([]ZosNetwork, error) {
	var list []ZosNetwork
	err := c.do(ctx, http.MethodGet, "/v1/zos", nil, &list)
	return list, err
}

// ZosDelete asks ZosService.ZosDelete.
func (c *Client) ZosDelete(ctx context.Context, twin uint32, name string) error {
	return c.do(ctx, http.MethodDelete, fmt.Sprintf("/v1/zos/%d/%s", twin, url.PathEscape(name)), nil, nil)
}
