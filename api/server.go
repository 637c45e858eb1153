package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/znet/znet/spec"
)

// MaxBodySize is the largest request body, in bytes, the server reads (the
// same limit as spec.MaxSize). A larger body is answered with 413.
const MaxBodySize = spec.MaxSize

// Server timeouts. The write timeout is generous because an apply that
// builds a namespace and a data plane can take a while on a loaded machine.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute
	writeTimeout      = 5 * time.Minute
	idleTimeout       = 2 * time.Minute
)

// ServerOptions configures a Server.
type ServerOptions struct {
	// Logger receives one Debug record per request (never a body) and the
	// errors that become a 500. Nil discards everything.
	Logger *slog.Logger
	// Token, when not empty, is the bearer token every request must carry
	// ("Authorization: Bearer TOKEN"); others are answered 401. Set it for
	// a server on a ListenTCP listener; the Unix socket relies on its
	// file mode instead.
	Token string
	// Instrument, if set, wraps the whole handler (token check included),
	// e.g. to count every answer for znet_api_requests_total.
	Instrument func(http.Handler) http.Handler
}

// Server exposes a Service over HTTP/JSON. Create it with NewServer, start it
// with Serve and stop it with Shutdown.
type Server struct {
	svc  Service
	log  *slog.Logger
	mux  *http.ServeMux
	http *http.Server
}

// NewServer returns a Server that answers API requests with svc.
func NewServer(svc Service, opts ServerOptions) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: svc, log: log}
	s.mux = s.routes()
	var h http.Handler = s
	if opts.Token != "" {
		h = requireToken(opts.Token, log, s)
	}
	if opts.Instrument != nil {
		h = opts.Instrument(h)
	}
	s.http = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// Serve accepts connections on l until Shutdown; it then returns nil. Any
// other error from accepting is returned. Serve closes l.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits, until ctx ends, for the
// requests in flight to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.http.Shutdown(ctx)
}

// handlerFunc answers one request: the status and the value to send as
// JSON, or an error that StatusOf turns into one.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (int, any, error)

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	handle := func(pattern string, h handlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			status, v, err := h(w, r)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			writeJSON(w, status, v)
		})
	}
	handle("POST /v1/networks/{name}/reserve", s.reserve)
	handle("POST /v1/networks", s.apply)
	handle("GET /v1/networks", s.networks)
	handle("GET /v1/networks/{name}", s.network)
	handle("DELETE /v1/networks/{name}", s.deleteNetwork)
	handle("POST /v1/networks/{name}/workloads", s.attach)
	handle("GET /v1/networks/{name}/workloads", s.workloads)
	handle("GET /v1/networks/{name}/workloads/{workload}", s.workload)
	handle("DELETE /v1/networks/{name}/workloads/{workload}", s.detach)
	handle("POST /v1/networks/{name}/access", s.addAccess)
	handle("GET /v1/networks/{name}/access", s.accessPeers)
	handle("DELETE /v1/networks/{name}/access/{peer}", s.removeAccess)
	handle("GET /v1/status", s.status)
	handle("GET /v1/status/{name}", s.status)
	if zs, ok := s.svc.(ZosService); ok {
		s.zosRoutes(handle, zs)
	}
	return mux
}

// ServeHTTP routes r, answering unknown paths and methods with JSON errors,
// and logs the request at Debug level.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(rec, r)
	} else {
		s.notRouted(rec, r)
	}
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "api request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", rec.status()), slog.Duration("took", time.Since(start)))
}

// notRouted answers a request no route matches: 405 when the path exists
// with another method, 404 otherwise.
func (s *Server) notRouted(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) == 0 {
		writeJSON(w, http.StatusNotFound, &Error{Message: fmt.Sprintf("no such API path %s", r.URL.Path)})
		return
	}
	for _, m := range allowed {
		w.Header().Add("Allow", m)
	}
	writeJSON(w, http.StatusMethodNotAllowed, &Error{Message: fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path)})
}

// pathNames returns the network, workload and access peer a request's
// path names, as log attributes.
func pathNames(r *http.Request) []any {
	var out []any
	for _, p := range [][2]string{{"name", "network"}, {"workload", "workload"}, {"peer", "peer"}} {
		if v := r.PathValue(p[0]); v != "" {
			out = append(out, p[1], v)
		}
	}
	return out
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errBodyTooLarge) {
		writeJSON(w, http.StatusRequestEntityTooLarge, errBodyTooLarge)
		return
	}
	status, body := StatusOf(err)
	if status == http.StatusInternalServerError {
		s.log.Error("api request failed", append(pathNames(r), "method", r.Method, "path", r.URL.Path, "err", err)...)
	}
	writeJSON(w, status, body)
}

// writeJSON sends v as JSON with status; a nil v sends no body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	if v == nil {
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(&Error{Message: fmt.Sprintf("encoding the answer: %v", err)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

var errBodyTooLarge = &Error{
	Kind:    ErrInvalid,
	Message: fmt.Sprintf("request body is larger than the limit of %d bytes (1 MiB)", MaxBodySize),
}

// readBody reads the whole request body, refusing more than MaxBodySize.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := readAll(http.MaxBytesReader(w, r.Body, MaxBodySize), r.ContentLength)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, errBodyTooLarge
	case err != nil:
		return nil, Invalid("", "reading the request body: %v", err)
	}
	return b, nil
}

// readAll is io.ReadAll into one buffer of size, the body's length as the
// request announces it (-1 for unknown): io.ReadAll reads a spec of a
// thousand members (110 kB) in growing pieces and copies them into one
// (51 µs and 228 kB; one buffer of the right size: none of that).
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 || size > MaxBodySize {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, size+1) // one byte more: room to read the EOF
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		switch {
		case err == io.EOF:
			return b, nil
		case err != nil:
			return b, err
		case len(b) == cap(b): // longer than announced
			rest, err := io.ReadAll(r)
			return append(b, rest...), err
		}
	}
}

func (s *Server) reserve(w http.ResponseWriter, r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	body, err := readBody(w, r)
	if err != nil {
		return 0, nil, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		res, err := s.svc.Reserve(r.Context(), name)
		return http.StatusOK, res, err
	}
	req, err := decodeReserveRequest(body)
	if err != nil {
		return 0, nil, err
	}
	res, err := s.svc.ReservePort(r.Context(), name, req.ListenPort)
	return http.StatusOK, res, err
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request) (int, any, error) {
	// Only parsed: the Service validates it, for its own node.
	return withBody(w, r, spec.Parse, func(sp *spec.Spec) (ApplyResult, error) {
		return s.svc.Apply(r.Context(), sp)
	})
}

func (s *Server) networks(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	return listOf(s.svc.Networks(r.Context()))
}

func (s *Server) network(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	d, err := s.svc.Network(r.Context(), r.PathValue("name"))
	return http.StatusOK, d, err
}

func (s *Server) deleteNetwork(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	force := false
	if v := r.URL.Query().Get("force"); v != "" {
		var err error
		if force, err = strconv.ParseBool(v); err != nil {
			return 0, nil, Invalid("force", "%q is not a boolean", v)
		}
	}
	return http.StatusNoContent, nil, s.svc.DeleteNetwork(r.Context(), r.PathValue("name"), force)
}

func (s *Server) attach(w http.ResponseWriter, r *http.Request) (int, any, error) {
	return withBody(w, r, decodeAttachRequest, func(req AttachRequest) (Attachment, error) {
		return s.svc.Attach(r.Context(), r.PathValue("name"), req)
	})
}

func (s *Server) workloads(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	return listOf(s.svc.Workloads(r.Context(), r.PathValue("name")))
}

func (s *Server) detach(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	return http.StatusNoContent, nil, s.svc.Detach(r.Context(), r.PathValue("name"), r.PathValue("workload"))
}

func (s *Server) workload(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	a, err := s.svc.Workload(r.Context(), r.PathValue("name"), r.PathValue("workload"))
	return http.StatusOK, a, err
}

// status serves both /v1/status (every network: no name) and
// /v1/status/{name}.
func (s *Server) status(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	return listOf(s.svc.Status(r.Context(), r.PathValue("name")))
}

// withBody answers a request whose body decode parses, with what call
// makes of the parsed request: the handlers' common shape.
func withBody[Req, Res any](w http.ResponseWriter, r *http.Request, decode func([]byte) (Req, error),
	call func(Req) (Res, error)) (int, any, error) {
	body, err := readBody(w, r)
	if err != nil {
		return 0, nil, err
	}
	req, err := decode(body)
	if err != nil {
		return 0, nil, err
	}
	res, err := call(req)
	return http.StatusOK, res, err
}

// listOf answers a list, as [] rather than null when it is empty.
func listOf[T any](list []T, err error) (int, any, error) {
	if list == nil {
		list = []T{}
	}
	return http.StatusOK, list, err
}

// statusRecorder remembers the status a handler wrote, for the log.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
