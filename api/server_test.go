package api_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
	"github.com/znet/znet/spec"
)

func mustSpec(t *testing.T) *spec.Spec {
	t.Helper()
	s, err := spec.Decode(apitest.SpecDoc("shop", 3), apitest.NodeID)
	require.NoError(t, err)
	return s
}

func sampleStatus() api.NetworkStatus {
	return api.NetworkStatus{
		Name: "shop", NodeID: "node1", Generation: 3, Namespace: "zn-node1.shop",
		Interface: "zs-shop", Backend: "userspace", PID: 4242,
		PublicKey: apitest.Key(1), ListenPort: 40001,
		Subnet:  netip.MustParsePrefix("10.20.1.0/24"),
		Subnet6: netip.MustParsePrefix("fd3c:9a1e:77b2:1::/64"),
		Gateway: netip.MustParseAddr("10.20.1.1"), Gateway6: netip.MustParseAddr("fd3c:9a1e:77b2:1::1"),
		Workloads: 1,
		Peers: []api.PeerStatus{{
			Name: "node2", PublicKey: apitest.Key(2), Endpoint: "198.18.0.2:40007",
			AllowedIPs:    []netip.Prefix{netip.MustParsePrefix("10.20.2.0/24")},
			LastHandshake: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
			RxBytes:       1234, TxBytes: 5678,
		}},
		Problems: []string{"peer node3 has never completed a handshake"},
	}
}

// TestRoutes sends every call through the client to a fake and checks what
// the fake got and what came back.
func TestRoutes(t *testing.T) {
	wl := api.Workload{
		Name: "web", IPv4: netip.MustParseAddr("10.20.1.2"), IPv6: netip.MustParseAddr("fd3c:9a1e:77b2:1::2"),
		NetNS: "/run/netns/web", Interface: "znet0", State: api.StateAttached,
	}
	att := api.Attachment{
		IPv4: wl.IPv4, IPv6: wl.IPv6,
		Gateway: netip.MustParseAddr("10.20.1.1"), Gateway6: netip.MustParseAddr("fd3c:9a1e:77b2:1::1"),
		DNS: []netip.Addr{netip.MustParseAddr("10.20.1.1")}, Interface: "znet0",
	}
	summary := api.NetworkSummary{
		Name: "shop", Generation: 3, State: "applied",
		IPRange: netip.MustParsePrefix("10.20.0.0/16"), Subnet: netip.MustParsePrefix("10.20.1.0/24"),
		Nodes: 3, Workloads: 1,
	}
	tests := []struct {
		name      string
		setup     func(f *apitest.Fake)
		call      func(ctx context.Context, c *api.Client) (any, error)
		want      any
		wantCalls []string
	}{
		{
			name: "reserve",
			setup: func(f *apitest.Fake) {
				f.Reservation = api.Reservation{NodeID: "node1", PublicKey: apitest.Key(1), ListenPort: 40001}
			},
			call: func(ctx context.Context, c *api.Client) (any, error) { return c.Reserve(ctx, "shop") },
			want: api.Reservation{NodeID: "node1", PublicKey: apitest.Key(1), ListenPort: 40001}, wantCalls: []string{"Reserve(shop)"},
		},
		{
			name:  "apply raw bytes",
			setup: func(f *apitest.Fake) { f.ApplyResult = api.ApplyResult{Name: "shop", Generation: 3, Changed: true} },
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.ApplyRaw(ctx, apitest.SpecDoc("shop", 3))
			},
			want: api.ApplyResult{Name: "shop", Generation: 3, Changed: true}, wantCalls: []string{"Apply(shop, 3)"},
		},
		{
			name:  "apply a spec value",
			setup: func(f *apitest.Fake) { f.ApplyResult = api.ApplyResult{Name: "shop", Generation: 3} },
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Apply(ctx, mustSpec(t))
			},
			want: api.ApplyResult{Name: "shop", Generation: 3}, wantCalls: []string{"Apply(shop, 3)"},
		},
		{
			name:  "list networks",
			setup: func(f *apitest.Fake) { f.Summaries = []api.NetworkSummary{summary} },
			call:  func(ctx context.Context, c *api.Client) (any, error) { return c.Networks(ctx) },
			want:  []api.NetworkSummary{summary}, wantCalls: []string{"Networks()"},
		},
		{
			name:  "list no networks gives an empty list",
			setup: func(*apitest.Fake) {},
			call:  func(ctx context.Context, c *api.Client) (any, error) { return c.Networks(ctx) },
			want:  []api.NetworkSummary{}, wantCalls: []string{"Networks()"},
		},
		{
			name:  "show a network",
			setup: func(f *apitest.Fake) { f.Detail = api.NetworkDetail{Spec: mustSpec(t), Status: sampleStatus()} },
			call:  func(ctx context.Context, c *api.Client) (any, error) { return c.Network(ctx, "shop") },
			want:  api.NetworkDetail{Spec: mustSpec(t), Status: sampleStatus()}, wantCalls: []string{"Network(shop)"},
		},
		{
			name:  "delete",
			setup: func(*apitest.Fake) {},
			call:  func(ctx context.Context, c *api.Client) (any, error) { return nil, c.DeleteNetwork(ctx, "shop", false) },
			want:  nil, wantCalls: []string{"DeleteNetwork(shop, false)"},
		},
		{
			name:  "delete with force",
			setup: func(*apitest.Fake) {},
			call:  func(ctx context.Context, c *api.Client) (any, error) { return nil, c.DeleteNetwork(ctx, "shop", true) },
			want:  nil, wantCalls: []string{"DeleteNetwork(shop, true)"},
		},
		{
			name:  "attach",
			setup: func(f *apitest.Fake) { f.Attachment = att },
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Attach(ctx, "shop", api.AttachRequest{Name: "web", NetNS: "/run/netns/web", IPv4: wl.IPv4, IfName: "eth1"})
			},
			want: att, wantCalls: []string{"Attach(shop, web)"},
		},
		{
			name:  "detach",
			setup: func(*apitest.Fake) {},
			call:  func(ctx context.Context, c *api.Client) (any, error) { return nil, c.Detach(ctx, "shop", "web") },
			want:  nil, wantCalls: []string{"Detach(shop, web)"},
		},
		{
			name:  "one workload",
			setup: func(f *apitest.Fake) { f.Attachment = att },
			call:  func(ctx context.Context, c *api.Client) (any, error) { return c.Workload(ctx, "shop", "vm1") },
			want:  att, wantCalls: []string{"Workload(shop, vm1)"},
		},
		{
			name:  "list workloads",
			setup: func(f *apitest.Fake) { f.WorkloadsOf = []api.Workload{wl} },
			call:  func(ctx context.Context, c *api.Client) (any, error) { return c.Workloads(ctx, "shop") },
			want:  []api.Workload{wl}, wantCalls: []string{"Workloads(shop)"},
		},
		{
			name:  "status of every network",
			setup: func(f *apitest.Fake) { f.Statuses = []api.NetworkStatus{sampleStatus()} },
			call:  func(ctx context.Context, c *api.Client) (any, error) { return c.Status(ctx, "") },
			want:  []api.NetworkStatus{sampleStatus()}, wantCalls: []string{"Status()"},
		},
		{
			name:  "status of one network",
			setup: func(f *apitest.Fake) { f.Statuses = []api.NetworkStatus{sampleStatus()} },
			call:  func(ctx context.Context, c *api.Client) (any, error) { return c.Status(ctx, "shop") },
			want:  []api.NetworkStatus{sampleStatus()}, wantCalls: []string{"Status(shop)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, client, _ := newFixture(t)
			tt.setup(fake)
			got, err := tt.call(t.Context(), client)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantCalls, fake.Calls())
		})
	}
}

func TestApplyPassesTheDecodedSpec(t *testing.T) {
	fake, client, _ := newFixture(t)
	_, err := client.ApplyRaw(t.Context(), apitest.SpecDoc("shop", 3))
	require.NoError(t, err)
	got := fake.LastSpec()
	require.NotNil(t, got)
	assert.True(t, got.Equal(mustSpec(t)), "got %+v", got)
	assert.Equal(t, spec.DeriveULA("shop"), got.IPv6Range, "defaults are filled in")
}

func TestAttachPassesTheRequest(t *testing.T) {
	fake, client, _ := newFixture(t)
	req := api.AttachRequest{Name: "web", NetNS: "/proc/42/ns/net", IPv4: netip.MustParseAddr("10.20.1.9"), IfName: "eth1"}
	_, err := client.Attach(t.Context(), "shop", req)
	require.NoError(t, err)
	assert.Equal(t, req, fake.LastAttach())

	_, err = client.Attach(t.Context(), "shop", api.AttachRequest{Name: "db", NetNS: "/run/netns/db"})
	require.NoError(t, err)
	assert.Equal(t, api.AttachRequest{Name: "db", NetNS: "/run/netns/db"}, fake.LastAttach(), "optional fields stay empty")
}

// TestBadRequests sends malformed requests by hand: each gets a JSON error
// naming the field, and the service is never called.
func TestBadRequests(t *testing.T) {
	good := string(apitest.SpecDoc("shop", 3))
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantField  string
	}{
		{"apply malformed JSON", "POST", "/v1/networks", `{"name": "shop",`, 400, ""},
		{"apply empty body", "POST", "/v1/networks", ``, 400, ""},
		{"apply unknown field", "POST", "/v1/networks", `{"name": "shop", "colour": "red"}`, 400, "colour"},
		{"apply wrong type", "POST", "/v1/networks", `{"name": "shop", "generation": "3"}`, 400, "generation"},
		{"apply trailing data", "POST", "/v1/networks", good + `{}`, 400, ""},
		{"apply body over 1 MiB", "POST", "/v1/networks", string(bigBody()), 413, ""},
		{"attach malformed JSON", "POST", "/v1/networks/shop/workloads", `{"name": `, 400, ""},
		{"attach not an object", "POST", "/v1/networks/shop/workloads", `["web"]`, 400, ""},
		{"attach unknown field", "POST", "/v1/networks/shop/workloads", `{"name": "web", "netns": "/x", "color": "aa"}`, 400, "color"},
		{"attach field in another case", "POST", "/v1/networks/shop/workloads", `{"Name": "web"}`, 400, "Name"},
		{"attach repeated field", "POST", "/v1/networks/shop/workloads", `{"name": "web", "name": "db"}`, 400, "name"},
		{"attach wrong type", "POST", "/v1/networks/shop/workloads", `{"name": 7, "netns": "/x"}`, 400, "name"},
		{"attach null", "POST", "/v1/networks/shop/workloads", `{"name": "web", "netns": null}`, 400, "netns"},
		{"attach bad address", "POST", "/v1/networks/shop/workloads", `{"name": "web", "ipv4": "10.20.1"}`, 400, "ipv4"},
		{"attach IPv6 as ipv4", "POST", "/v1/networks/shop/workloads", `{"name": "web", "ipv4": "fd00::1"}`, 400, "ipv4"},
		{"attach trailing data", "POST", "/v1/networks/shop/workloads", `{"name": "web"} x`, 400, ""},
		{"attach body over 1 MiB", "POST", "/v1/networks/shop/workloads", string(bigBody()), 413, ""},
		{"reserve invalid name", "POST", "/v1/networks/Shop/reserve", ``, 400, "name"},
		{"reserve port 0", "POST", "/v1/networks/shop/reserve", `{"listen_port": 0}`, 400, "listen_port"},
		{"reserve port 65536", "POST", "/v1/networks/shop/reserve", `{"listen_port": 65536}`, 400, "listen_port"},
		{"show invalid name", "GET", "/v1/networks/shop_1", ``, 400, "name"},
		{"show name with an escaped slash", "GET", "/v1/networks/a%2Fb", ``, 400, "name"},
		{"show name too long", "GET", "/v1/networks/abcdefghijabcdefghijabcdefghijabc", ``, 400, "name"},
		{"delete invalid name", "DELETE", "/v1/networks/-shop", ``, 400, "name"},
		{"delete bad force", "DELETE", "/v1/networks/shop?force=maybe", ``, 400, "force"},
		{"attach invalid network", "POST", "/v1/networks/SHOP/workloads", `{"name": "web"}`, 400, "name"},
		{"list workloads invalid network", "GET", "/v1/networks/sh%20op/workloads", ``, 400, "name"},
		{"detach invalid workload", "DELETE", "/v1/networks/shop/workloads/Web", ``, 400, "workload"},
		{"detach invalid network", "DELETE", "/v1/networks/sh.op/workloads/web", ``, 400, "name"},
		{"workload invalid name", "GET", "/v1/networks/shop/workloads/Vm1", ``, 400, "workload"},
		{"status invalid name", "GET", "/v1/status/a_b", ``, 400, "name"},
		{"unknown path", "GET", "/v1/nothing", ``, 404, ""},
		{"unknown version", "GET", "/v2/networks", ``, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, _, socket := newFixture(t)
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			a := rawDo(t, socket, tt.method, tt.path, body)
			assert.Equal(t, tt.wantStatus, a.status, "body %s", a.body)
			assert.Equal(t, "application/json", a.contentType)
			assert.Equal(t, tt.wantField, a.err.Field, "body %s", a.body)
			assert.NotEmpty(t, a.err.Message)
			assert.Empty(t, fake.Calls())
		})
	}
}

// TestInvalidSpecRefusedByService checks that the server only parses a
// spec and leaves validating it to the Service, whose field error becomes
// a 400 naming the field.
func TestInvalidSpecRefusedByService(t *testing.T) {
	fake, _, socket := newFixture(t)
	a := rawDo(t, socket, http.MethodPost, "/v1/networks", []byte(`{"name": "Shop"}`))
	assert.Equal(t, http.StatusBadRequest, a.status, "body %s", a.body)
	assert.Equal(t, "name", a.err.Field)
	assert.Contains(t, a.err.Message, "bad character")
	assert.Equal(t, []string{"Apply(Shop, 0)"}, fake.Calls())
}

// namesAsGiven is a Service that takes any workload name, to show what
// the server hands on.
type namesAsGiven struct {
	*apitest.Fake
	network, workload string
}

func (s *namesAsGiven) Workload(_ context.Context, network, name string) (api.Attachment, error) {
	s.network, s.workload = network, name
	return api.Attachment{}, nil
}

// TestServerLeavesNamesToService checks that the server only takes names
// out of the path and the Service alone checks them: the one check is at
// the service boundary.
func TestServerLeavesNamesToService(t *testing.T) {
	svc := &namesAsGiven{Fake: &apitest.Fake{}}
	socket := apitest.Serve(t, svc)
	a := rawDo(t, socket, http.MethodGet, "/v1/networks/Shop/workloads/We_b", nil)
	assert.Equal(t, http.StatusOK, a.status, "body %s", a.body)
	assert.Equal(t, "Shop", svc.network)
	assert.Equal(t, "We_b", svc.workload)
}

func TestClientRefusesTooLargeBodies(t *testing.T) {
	fake, client, _ := newFixture(t)
	for _, size := range []int{api.MaxBodySize + 1, 8 << 20} {
		_, err := client.ApplyRaw(t.Context(), make([]byte, size))
		require.ErrorIs(t, err, api.ErrInvalid)
		assert.Contains(t, err.Error(), "1 MiB")
	}
	assert.Empty(t, fake.Calls())
}

func TestWrongMethod(t *testing.T) {
	fake, _, socket := newFixture(t)
	a := rawDo(t, socket, http.MethodPut, "/v1/networks/shop", []byte(`{}`))
	assert.Equal(t, http.StatusMethodNotAllowed, a.status)
	assert.Equal(t, "application/json", a.contentType)
	assert.ElementsMatch(t, []string{"GET", "DELETE"}, a.allow)
	assert.Contains(t, a.err.Message, "PUT")
	assert.Empty(t, fake.Calls())
}

func TestAnswersAreJSON(t *testing.T) {
	fake, _, socket := newFixture(t)
	fake.Summaries = nil
	a := rawDo(t, socket, http.MethodGet, "/v1/networks", nil)
	assert.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, "application/json", a.contentType)
	assert.JSONEq(t, `[]`, string(a.body))

	a = rawDo(t, socket, http.MethodDelete, "/v1/networks/shop", nil)
	assert.Equal(t, http.StatusNoContent, a.status)
	assert.Empty(t, a.body)
}

func TestRequestLog(t *testing.T) {
	checkGoroutines(t)
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	path := filepath.Join(t.TempDir(), "api.sock")
	l, err := api.ListenUnix(path)
	require.NoError(t, err)
	fake := &apitest.Fake{}
	fake.SetErr("Networks", errors.New("store is broken"))
	srv := api.NewServer(fake, api.ServerOptions{Logger: log})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()

	secret := apitest.Key(9)
	a := rawDo(t, path, http.MethodPost, "/v1/networks", []byte(`{"name": "shop", "private_key": "`+secret+`"}`))
	assert.Equal(t, http.StatusBadRequest, a.status)
	_, err = api.NewClient(path).Networks(t.Context())
	require.Error(t, err)
	require.NoError(t, srv.Shutdown(t.Context()))
	require.NoError(t, <-done)

	out := buf.String()
	assert.Contains(t, out, `level=DEBUG msg="api request" method=POST path=/v1/networks status=400 took=`)
	assert.Contains(t, out, `level=DEBUG msg="api request" method=GET path=/v1/networks status=500 took=`)
	assert.Contains(t, out, `level=ERROR msg="api request failed" method=GET path=/v1/networks err="store is broken"`)
	assert.NotContains(t, out, secret, "bodies are never logged")
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
