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
	network, err := pathName(r, "name", "name")
	if err != nil {
		return 0, nil, err
	}
	body, err := readBody(w, r)
	if err != nil {
		return 0, nil, err
	}
	req, err := decodeAccessRequest(body)
	if err != nil {
		return 0, nil, err
	}
	g, err := s.svc.AddAccess(r.Context(), network, req)
	return http.StatusOK, g, err
}

func (s *Server) accessPeers(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	network, err := pathName(r, "name", "name")
	if err != nil {
		return 0, nil, err
	}
	list, err := s.svc.AccessPeers(r.Context(), network)
	if list == nil {
		list = []AccessPeer{}
	}
	return http.StatusOK, list, err
}

func (s *Server) removeAccess(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	network, err := pathName(r, "name", "name")
	if err != nil {
		return 0, nil, err
	}
	peer, err := pathName(r, "peer", "peer")
	if err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, s.svc.RemoveAccess(r.Context(), network, peer)
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
