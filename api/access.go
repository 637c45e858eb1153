package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/znet/znet/internal/strictjson"
)

func (s *Server) addAccess(w http.ResponseWriter, r *http.Request) (int, any, error) {
	return withBody(w, r, decodeAccessRequest, func(req AccessRequest) (AccessGrant, error) {
		return s.svc.AddAccess(r.Context(), r.PathValue("name"), req)
	})
}

func (s *Server) accessPeers(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	return listOf(s.svc.AccessPeers(r.Context(), r.PathValue("name")))
}

func (s *Server) removeAccess(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	return http.StatusNoContent, nil, s.svc.RemoveAccess(r.Context(), r.PathValue("name"), r.PathValue("peer"))
}

// decodeAccessRequest parses an AccessRequest as strictly as an attach.
func decodeAccessRequest(data []byte) (AccessRequest, error) {
	var req AccessRequest
	texts := []strictjson.Text{{Key: "name", To: &req.Name}, {Key: "public_key", To: &req.PublicKey}}
	err := decodeObject(data, strictjson.Members(Invalid, texts, func(key, _ string, _ json.RawMessage) error {
		return Invalid(key, "unknown field")
	}))
	return req, err
}

// AddAccess implements Service.
func (c *Client) AddAccess(ctx context.Context, network string, req AccessRequest) (AccessGrant, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return AccessGrant{}, fmt.Errorf("encoding the access request: %w", err)
	}
	var g AccessGrant
	err = c.do(ctx, http.MethodPost, "/v1/networks/"+url.PathEscape(network)+"/access", data, &g)
	return g, err
}

// RemoveAccess implements Service.
func (c *Client) RemoveAccess(ctx context.Context, network, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/networks/"+url.PathEscape(network)+"/access/"+url.PathEscape(name), nil, nil)
}

// AccessPeers implements Service.
func (c *Client) AccessPeers(ctx context.Context, network string) ([]AccessPeer, error) {
	var list []AccessPeer
	err := c.do(ctx, http.MethodGet, "/v1/networks/"+url.PathEscape(network)+"/access", nil, &list)
	return list, err
}
