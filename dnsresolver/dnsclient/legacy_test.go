package dnsclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
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

	require.NoError(t, pushResolver(ctx, new(dnsresolver.Pushes), sock, dnsresolver.Config{Network: "shop", NodeID: "n1"}))
	assert.Equal(t, "shop", got.Network)
	st, err := queryResolver(ctx, sock)
	require.NoError(t, err)
	assert.Equal(t, uint32(7), st.Serial)
	assert.Equal(t, 2, st.Records)
	assert.ErrorIs(t, pushResolver(ctx, new(dnsresolver.Pushes), sock, dnsresolver.Config{Network: "bad"}), dnsresolver.ErrInvalidConfig)
}

// TestPushToResolverWithoutMemberSubnets checks that the daemon still
// configures a resolver that predates members' subnets: it refuses unknown
// fields, so it gets the Config without them.
func TestPushToResolverWithoutMemberSubnets(t *testing.T) {
	type oldMember struct {
		ID       string     `json:"id"`
		Gateway4 netip.Addr `json:"gateway4"`
		Gateway6 netip.Addr `json:"gateway6"`
	}
	sock, got := strictResolver[olderConfig[oldMember]](t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cfg := dnsresolver.Config{Network: "shop", NodeID: "n1", Members: []dnsresolver.Member{{
		ID: "n2", Gateway4: netip.MustParseAddr("10.20.2.1"), Subnet4: netip.MustParsePrefix("10.20.2.0/24"),
	}}}
	require.NoError(t, pushResolver(ctx, new(dnsresolver.Pushes), sock, cfg))
	old := <-got
	assert.Equal(t, []oldMember{{ID: "n2", Gateway4: netip.MustParseAddr("10.20.2.1")}}, old.Members)
}

// olderConfig is a Config as resolvers of older builds decode it: without
// Hold, and with members of type M.
type olderConfig[M any] struct {
	Network   string               `json:"network"`
	NodeID    string               `json:"node_id"`
	Gateway4  netip.Addr           `json:"gateway4"`
	Gateway6  netip.Addr           `json:"gateway6"`
	IPRange   netip.Prefix         `json:"ip_range"`
	IPv6Range netip.Prefix         `json:"ipv6_range"`
	Members   []M                  `json:"members"`
	Local     []dnsresolver.Record `json:"local"`
}

// strictResolver serves the control protocol on a new socket, whose path
// it returns, as a resolver whose Config is C does: it decodes strictly
// (refuses unknown fields as an invalid Config) and sends every Config it
// took on the channel.
func strictResolver[C any](t *testing.T) (string, <-chan C) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "old.dns")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	got := make(chan C, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			var req struct {
				Op     string `json:"op"`
				Config *C     `json:"config"`
			}
			dec := json.NewDecoder(c)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil || req.Config == nil {
				_ = json.NewEncoder(c).Encode(map[string]string{"error": fmt.Sprint(err), "kind": "invalid"})
			} else {
				got <- *req.Config
				_, _ = c.Write([]byte("{}\n"))
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = l.Close(); <-done })
	return sock, got
}

// TestPushHoldToResolverWithoutIt checks that a resolver from before
// Config.Hold (a data plane adopted after an upgrade) still gets every
// Config: one holding nothing goes as it is (the field is omitted), one
// holding members goes again without them, subnets kept.
func TestPushHoldToResolverWithoutIt(t *testing.T) {
	sock, got := strictResolver[olderConfig[dnsresolver.Member]](t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	members := []dnsresolver.Member{{
		ID: "n2", Gateway4: netip.MustParseAddr("10.20.2.1"), Subnet4: netip.MustParsePrefix("10.20.2.0/24"),
	}}
	for _, hold := range [][]string{nil, {"n2"}} {
		cfg := dnsresolver.Config{Network: "shop", NodeID: "n1", Members: members, Hold: hold}
		require.NoError(t, pushResolver(ctx, new(dnsresolver.Pushes), sock, cfg), "hold %v", hold)
		assert.Equal(t, members, (<-got).Members, "hold %v", hold)
		assert.Empty(t, got, "hold %v: one Config taken", hold)
	}
}
