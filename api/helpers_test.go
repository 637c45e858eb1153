package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
)

// newFixture serves a fresh Fake on a temporary socket and returns it with
// a client for that socket and the socket's path.
func newFixture(t *testing.T) (*apitest.Fake, *api.Client, string) {
	t.Helper()
	checkGoroutines(t)
	fake := &apitest.Fake{}
	socket := apitest.Serve(t, fake)
	return fake, api.NewClient(socket), socket
}

// rawAnswer is what the server sent to a hand-made request.
type rawAnswer struct {
	status      int
	contentType string
	allow       []string
	body        []byte
	err         api.Error // the decoded error body, if any
}

// rawDo sends a hand-made request over socket, bypassing api.Client.
func rawDo(t *testing.T, socket, method, path string, body []byte) rawAnswer {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, "http://znetd"+path, rd)
	require.NoError(t, err)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := rawAnswer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), allow: resp.Header.Values("Allow"), body: b}
	if resp.StatusCode >= 400 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&a.err), "error body %q", b)
	}
	return a
}

// checkGoroutines fails the test if it leaves goroutines behind. Call it
// before starting anything, so its cleanup runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf)
		}
	})
}

// bigBody returns a JSON-looking body one byte over the API's limit.
func bigBody() []byte {
	return []byte(`{"name": "` + strings.Repeat("a", api.MaxBodySize) + `"}`)
}
