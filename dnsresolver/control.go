package dnsresolver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// The control protocol: one request per connection over a Unix socket. The
// client writes one JSON request and shuts its side down; the server
// answers with one JSON response and closes.
//
//	{"op": "config", "config": {...}} -> {"version": "..."} or {"error": "...", "kind": "invalid"|"closed"}
//	{"op": "delta", "delta": {...}}   -> the same, or kind "stale" (see delta.go)
//	{"op": "stats"}                   -> {"stats": {...}}
//
// It is not HTTP on purpose: net/http is the largest package a data-plane
// process would link only for this, and there is one data plane per
// network, so its program text counts once per network in resident memory.
const (
	// maxConfigSize caps a request's JSON.
	maxConfigSize = 16 << 20
	// controlTimeout bounds one request on the server side.
	controlTimeout = 5 * time.Second
)

// ErrHTTPControl is returned (wrapped) by Push and Query when the control
// socket answers in HTTP: a data plane started by an older znetd, which
// spoke HTTP with JSON bodies (PUT /config, GET /stats). Data planes
// outlive znetd upgrades, so the caller may speak that instead (package
// dnsclient does; this package does not, to keep net/http out of data planes).
var ErrHTTPControl = errors.New("the resolver speaks the older HTTP control protocol")

// controlRequest is what a client sends.
type controlRequest struct {
	Op     string       `json:"op"`
	Config *Config      `json:"config,omitempty"`
	Delta  *configDelta `json:"delta,omitempty"`
}

// controlResponse is what the server answers.
type controlResponse struct {
	Stats *Stats `json:"stats,omitempty"`
	// Version names the Config the server holds after a config or delta
	// request (see delta.go); servers before deltas send none.
	Version string `json:"version,omitempty"`
	Error   string `json:"error,omitempty"`
	// Kind says which sentinel Error stands for: "invalid" for
	// ErrInvalidConfig, "closed" for ErrClosed, "stale" for errStale, ""
	// for none.
	Kind string `json:"kind,omitempty"`
}

// ServeControl serves the control protocol on l for r (Push sends a Config
// to Update, Query reads Stats) until stop is called. stop closes l, waits
// for requests in flight (each bounded by controlTimeout) and for the
// serving goroutine; it is safe to call more than once. Who may connect to
// l is the caller's business (the socket file's mode).
func ServeControl(l net.Listener, r Controller) (stop func()) {
	var wg sync.WaitGroup
	v := newVersioned()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveControlConn(c, r, v)
			}()
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = l.Close()
			wg.Wait()
		})
	}
}

// serveControlConn answers the one request on c.
func serveControlConn(c net.Conn, r Controller, v *versioned) {
	defer func() { _ = c.Close() }()
	_ = c.SetReadDeadline(time.Now().Add(controlTimeout))
	var resp controlResponse
	var req controlRequest
	dec := json.NewDecoder(io.LimitReader(c, maxConfigSize))
	dec.DisallowUnknownFields()
	switch err := dec.Decode(&req); {
	case err != nil:
		resp = controlResponse{Error: fmt.Sprintf("decoding request: %v", err), Kind: "invalid"}
	case req.Op == "config" && req.Config != nil:
		resp = updateResponse(v.full(r, *req.Config))
	case req.Op == "delta" && req.Delta != nil:
		resp = updateResponse(v.delta(r, *req.Delta))
	case req.Op == "stats":
		s := r.Stats()
		resp.Stats = &s
	default:
		resp = controlResponse{Error: fmt.Sprintf("unknown request %q", req.Op), Kind: "invalid"}
	}
	// A fresh deadline: a slow Update must not leave its answer unsent.
	_ = c.SetWriteDeadline(time.Now().Add(controlTimeout))
	_ = json.NewEncoder(c).Encode(resp)
}

// updateResponse is the answer to a config or delta request that gave
// version and err.
func updateResponse(version string, err error) controlResponse {
	if err == nil {
		return controlResponse{Version: version}
	}
	resp := controlResponse{Error: err.Error()}
	switch {
	case errors.Is(err, ErrInvalidConfig):
		resp.Kind = "invalid"
	case errors.Is(err, ErrClosed):
		resp.Kind = "closed"
	case errors.Is(err, errStale):
		resp.Kind = "stale"
	}
	return resp
}

// Push sends cfg whole to the resolver behind the control socket at
// socketPath. A Config the resolver rejects gives an error wrapping
// ErrInvalidConfig, a closed resolver one wrapping ErrClosed. Safe for
// concurrent use; Pushes.Push sends only changes.
func Push(ctx context.Context, socketPath string, cfg Config) error {
	return new(Pushes).Push(ctx, socketPath, cfg)
}

// Push is the package's Push, except that when p pushed to the same
// resolver before, only the change is sent (see delta.go); the resolver
// ends up with cfg either way, and errors are those of a whole push.
func (p *Pushes) Push(ctx context.Context, socketPath string, cfg Config) error {
	if p.pushDelta(ctx, socketPath, cfg) {
		return nil
	}
	p.Forget(socketPath)
	resp, err := control(ctx, socketPath, controlRequest{Op: "config", Config: &cfg})
	if err != nil {
		return fmt.Errorf("pushing config to %s: %w", socketPath, err)
	}
	p.remember(socketPath, resp.Version, cfg)
	return nil
}

// Query reads the Stats of the resolver behind the control socket at
// socketPath.
func Query(ctx context.Context, socketPath string) (Stats, error) {
	resp, err := control(ctx, socketPath, controlRequest{Op: "stats"})
	if err != nil {
		return Stats{}, fmt.Errorf("querying resolver at %s: %w", socketPath, err)
	}
	if resp.Stats == nil {
		return Stats{}, fmt.Errorf("querying resolver at %s: answer without stats", socketPath)
	}
	return *resp.Stats, nil
}

// control sends req over a new connection to socketPath and returns the
// answer; a failed one as an error wrapping the sentinel its kind stands
// for.
func control(ctx context.Context, socketPath string, req controlRequest) (*controlResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socketPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.Close() }()
	if dl, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(dl); err != nil {
			return nil, err
		}
	}
	// A cancelled ctx without a deadline still ends the exchange.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write(body); err != nil {
		return nil, err
	}
	if err := c.(*net.UnixConn).CloseWrite(); err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(c, maxConfigSize))
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(raw, []byte("HTTP/")) {
		return nil, ErrHTTPControl
	}
	var resp controlResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("decoding answer: %w", err)
	}
	switch {
	case resp.Error == "":
		return &resp, nil
	case resp.Kind == "invalid":
		return nil, fmt.Errorf("%s: %w", resp.Error, ErrInvalidConfig)
	case resp.Kind == "closed":
		return nil, fmt.Errorf("%s: %w", resp.Error, ErrClosed)
	case resp.Kind == "stale":
		return nil, fmt.Errorf("%s: %w", resp.Error, errStale)
	}
	return nil, errors.New(resp.Error)
}
