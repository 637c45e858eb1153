package dnsclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/znet/znet/dnsresolver"
)

// Data planes outlive znetd, also across an upgrade, and the ones started
// before the resolver's control protocol became one JSON request per
// connection speak HTTP (PUT /config, GET /stats, JSON bodies, errors as
// {"error": ...} with 400 for an invalid config and 503 for a closed
// resolver). This client speaks it to them, so that their DNS keeps
// following the state until they are replaced; the dnsresolver package
// does not, because every data plane links it and net/http would cost each
// about 1.9 MiB of resident memory.

// pushResolver is pushes.Push, falling back to the HTTP protocol, and to
// what older resolvers take when one refuses cfg (they decode strictly, so
// a field they predate is an invalid Config): first cfg without Hold (a
// resolver from before it holds back its first sync by its own rule, to
// every member it starts in a crowd), then also without the members'
// subnets (one that predates them checks only the network's ranges until
// its data plane is replaced). A Config that is invalid for another
// reason fails every way, with the first error.
func pushResolver(ctx context.Context, pushes *dnsresolver.Pushes, sock string, cfg dnsresolver.Config) error {
	err := pushResolverOnce(ctx, pushes, sock, cfg)
	if !errors.Is(err, dnsresolver.ErrInvalidConfig) {
		return err
	}
	for _, older := range olderConfigs(cfg) {
		if pushResolverOnce(ctx, pushes, sock, older) == nil {
			return nil
		}
	}
	return err
}

// olderConfigs returns cfg as older resolvers take it, newest first
// (pushResolver).
func olderConfigs(cfg dnsresolver.Config) []dnsresolver.Config {
	var out []dnsresolver.Config
	if len(cfg.Hold) > 0 {
		cfg.Hold = nil
		out = append(out, cfg)
	}
	old := cfg
	old.Members = make([]dnsresolver.Member, len(cfg.Members))
	for i, m := range cfg.Members {
		old.Members[i] = dnsresolver.Member{ID: m.ID, Gateway4: m.Gateway4, Gateway6: m.Gateway6}
	}
	return append(out, old)
}

// pushResolverOnce is pushes.Push, falling back to the HTTP protocol.
func pushResolverOnce(ctx context.Context, pushes *dnsresolver.Pushes, sock string, cfg dnsresolver.Config) error {
	err := pushes.Push(ctx, sock, cfg)
	if !errors.Is(err, dnsresolver.ErrHTTPControl) {
		return err
	}
	body, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("pushing config: %w", err)
	}
	resp, err := httpControl(ctx, sock, http.MethodPut, "/config", body)
	if err != nil {
		return fmt.Errorf("pushing config to %s (HTTP): %w", sock, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return fmt.Errorf("pushing config to %s (HTTP): %w", sock, httpControlError(resp))
}

// queryResolver is dnsresolver.Query, falling back to the HTTP protocol.
func queryResolver(ctx context.Context, sock string) (dnsresolver.Stats, error) {
	st, err := dnsresolver.Query(ctx, sock)
	if !errors.Is(err, dnsresolver.ErrHTTPControl) {
		return st, err
	}
	resp, err := httpControl(ctx, sock, http.MethodGet, "/stats", nil)
	if err != nil {
		return st, fmt.Errorf("querying resolver at %s (HTTP): %w", sock, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("querying resolver at %s (HTTP): %w", sock, httpControlError(resp))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&st); err != nil {
		return st, fmt.Errorf("decoding stats from %s (HTTP): %w", sock, err)
	}
	return st, nil
}

// httpControl makes one HTTP request to the Unix socket sock.
func httpControl(ctx context.Context, sock, method, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://resolver"+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}}
	return client.Do(req)
}

// httpControlError turns a failed HTTP answer into an error wrapping the
// sentinel its status stands for.
func httpControlError(resp *http.Response) error {
	var ce struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&ce)
	if ce.Error == "" {
		ce.Error = resp.Status
	}
	switch resp.StatusCode {
	case http.StatusBadRequest:
		return fmt.Errorf("%s: %w", ce.Error, dnsresolver.ErrInvalidConfig)
	case http.StatusServiceUnavailable:
		return fmt.Errorf("%s: %w", ce.Error, dnsresolver.ErrClosed)
	}
	return errors.New(ce.Error)
}
