package dnsresolver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// The control protocol: HTTP/1.1 with JSON bodies over a Unix socket.
//
//	PUT /config  body: a Config   -> 204, or {"error": "..."} with 400
//	                                 (invalid config), 503 (closed), 500
//	GET /stats                    -> 200 and a Stats
const (
	configPath = "/config"
	statsPath  = "/stats"
	// maxConfigSize caps a Config's JSON.
	maxConfigSize = 16 << 20
)

// controlError is the body of a failed control request.
type controlError struct {
	Error string `json:"error"`
}

// ServeControl serves the control protocol on l for r (Push sends a Config
// to Update, Query reads Stats) until stop is called. stop closes l, waits
// for requests in flight (at most 5 s) and for the serving goroutine; it is
// safe to call more than once. Who may connect to l is the caller's business
// (the socket file's mode).
func ServeControl(l net.Listener, r Controller) (stop func()) {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT "+configPath, func(w http.ResponseWriter, req *http.Request) {
		var cfg Config
		dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxConfigSize))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			writeControlError(w, http.StatusBadRequest, fmt.Errorf("decoding config: %w", err))
			return
		}
		if err := r.Update(cfg); err != nil {
			code := http.StatusInternalServerError
			switch {
			case errors.Is(err, ErrInvalidConfig):
				code = http.StatusBadRequest
			case errors.Is(err, ErrClosed):
				code = http.StatusServiceUnavailable
			}
			writeControlError(w, code, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+statsPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Stats())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = srv.Serve(l) // returns http.ErrServerClosed after stop
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if srv.Shutdown(ctx) != nil {
				_ = srv.Close()
			}
			wg.Wait()
		})
	}
}

// writeControlError writes err as a control error with status code.
func writeControlError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(controlError{Error: err.Error()})
}

// Push sends cfg to the resolver behind the control socket at socketPath.
// A Config the resolver rejects gives an error wrapping ErrInvalidConfig,
// a closed resolver one wrapping ErrClosed.
func Push(ctx context.Context, socketPath string, cfg Config) error {
	body, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("pushing config: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://resolver"+configPath, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("pushing config: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := controlClient(socketPath).Do(req)
	if err != nil {
		return fmt.Errorf("pushing config to %s: %w", socketPath, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return fmt.Errorf("pushing config to %s: %w", socketPath, readControlError(resp))
}

// Query reads the Stats of the resolver behind the control socket at
// socketPath.
func Query(ctx context.Context, socketPath string) (Stats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://resolver"+statsPath, nil)
	if err != nil {
		return Stats{}, fmt.Errorf("querying resolver: %w", err)
	}
	resp, err := controlClient(socketPath).Do(req)
	if err != nil {
		return Stats{}, fmt.Errorf("querying resolver at %s: %w", socketPath, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return Stats{}, fmt.Errorf("querying resolver at %s: %w", socketPath, readControlError(resp))
	}
	var s Stats
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxConfigSize)).Decode(&s); err != nil {
		return Stats{}, fmt.Errorf("decoding stats from %s: %w", socketPath, err)
	}
	return s, nil
}

// controlClient returns an HTTP client that reaches the Unix socket at path
// and keeps no idle connection (nor goroutine) behind.
func controlClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}}
}

// readControlError turns a failed control answer into an error that wraps
// the sentinel its status stands for.
func readControlError(resp *http.Response) error {
	var ce controlError
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&ce)
	if ce.Error == "" {
		ce.Error = resp.Status
	}
	switch resp.StatusCode {
	case http.StatusBadRequest:
		return fmt.Errorf("%s: %w", ce.Error, ErrInvalidConfig)
	case http.StatusServiceUnavailable:
		return fmt.Errorf("%s: %w", ce.Error, ErrClosed)
	}
	return errors.New(ce.Error)
}
