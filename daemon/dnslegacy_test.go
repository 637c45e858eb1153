package daemon

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/znet/znet/dnsresolver"
)

// TestResolverOverHTTP checks that the daemon still configures and reads
// a resolver of a data plane that speaks the older HTTP control protocol.
func TestResolverOverHTTP(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "old.dns")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	var got dnsresolver.Config
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /config", func(w http.ResponseWriter, r *http.Request) {
		var cfg dnsresolver.Config
		if json.NewDecoder(r.Body).Decode(&cfg) != nil || cfg.Network == "bad" {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "network: bad"})
			return
		}
		got = cfg
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(dnsresolver.Stats{Serial: 7, Records: 2})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err = dnsresolver.Query(ctx, sock)
	require.ErrorIs(t, err, dnsresolver.ErrHTTPControl, "the new client recognises the old protocol")

	require.NoError(t, pushResolver(ctx, sock, dnsresolver.Config{Network: "shop", NodeID: "n1"}))
	assert.Equal(t, "shop", got.Network)
	st, err := queryResolver(ctx, sock)
	require.NoError(t, err)
	assert.Equal(t, uint32(7), st.Serial)
	assert.Equal(t, 2, st.Records)
	assert.ErrorIs(t, pushResolver(ctx, sock, dnsresolver.Config{Network: "bad"}), dnsresolver.ErrInvalidConfig)
}
