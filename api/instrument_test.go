package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statusSeen records the status of every answer of the handler it wraps.
type statusSeen struct {
	http.ResponseWriter
	code int
}

func (s *statusSeen) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func TestInstrumentSeesEveryAnswer(t *testing.T) {
	var seen []string
	instrument := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusSeen{ResponseWriter: w}
			h.ServeHTTP(rec, r)
			seen = append(seen, r.Method+" "+http.StatusText(rec.code))
		})
	}
	// With a token: the refusal is counted too, since Instrument wraps
	// the token check.
	s := NewServer(nil, ServerOptions{Token: "secret", Instrument: instrument})
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/v1/status", nil),
		withToken(httptest.NewRequest(http.MethodGet, "/nowhere", nil)),
		withToken(httptest.NewRequest(http.MethodPut, "/v1/networks", nil)),
	} {
		s.http.Handler.ServeHTTP(httptest.NewRecorder(), req)
	}
	assert.Equal(t, []string{"GET Unauthorized", "GET Not Found", "PUT Method Not Allowed"}, seen)
}

func withToken(r *http.Request) *http.Request {
	r.Header.Set("Authorization", "Bearer secret")
	return r
}

// failing is a Service whose Network fails with an internal error.
type failing struct{ Service }

func (failing) Network(context.Context, string) (NetworkDetail, error) {
	return NetworkDetail{}, errors.New("disk on fire")
}

func TestFailedRequestLogNamesTheNetwork(t *testing.T) {
	var buf bytes.Buffer
	s := NewServer(failing{}, ServerOptions{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	rec := httptest.NewRecorder()
	s.http.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/networks/shop", nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	assert.Equal(t, "api request failed", line["msg"])
	assert.Equal(t, "shop", line["network"])
}
