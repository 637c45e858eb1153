package api_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
)

const testToken = "s3cret-token-0123456789"

// newTLSFixture serves a fresh Fake over TLS with testToken.
func newTLSFixture(t *testing.T) (*apitest.Fake, *apitest.TLSServer) {
	t.Helper()
	checkGoroutines(t)
	fake := &apitest.Fake{}
	return fake, apitest.ServeTLS(t, fake, testToken)
}

// tlsDo sends a hand-made request to srv with the Authorization header
// auth (none when empty).
func tlsDo(t *testing.T, srv *apitest.TLSServer, method, path, auth string, body []byte) rawAnswer {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: srv.Cert.ClientConfig(), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, rd)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := rawAnswer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), allow: resp.Header.Values("WWW-Authenticate"), body: b}
	if resp.StatusCode >= 400 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&a.err), "error body %q", b)
	}
	return a
}

func TestTCPRequiresTheToken(t *testing.T) {
	tests := []struct {
		name string
		auth string
		want int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer wrong-token", http.StatusUnauthorized},
		{"token with a suffix", "Bearer " + testToken + "x", http.StatusUnauthorized},
		{"token prefix", "Bearer " + testToken[:len(testToken)-1], http.StatusUnauthorized},
		{"no scheme", testToken, http.StatusUnauthorized},
		{"basic scheme", "Basic " + testToken, http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"right token", "Bearer " + testToken, http.StatusOK},
		{"scheme in lower case", "bearer " + testToken, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, srv := newTLSFixture(t)
			a := tlsDo(t, srv, http.MethodGet, "/v1/networks", tt.auth, nil)
			assert.Equal(t, tt.want, a.status, "body %s", a.body)
			assert.Equal(t, "application/json", a.contentType)
			if tt.want == http.StatusUnauthorized {
				assert.Equal(t, []string{`Bearer realm="znetd"`}, a.allow, "WWW-Authenticate")
				assert.Contains(t, a.err.Message, "bearer token")
				assert.NotContains(t, string(a.body), testToken)
				assert.Empty(t, fake.Calls(), "the service was not called")
			} else {
				assert.Equal(t, []string{"Networks()"}, fake.Calls())
			}
		})
	}
}

func TestTCPRefusesUnknownPathsWithoutToken(t *testing.T) {
	_, srv := newTLSFixture(t)
	a := tlsDo(t, srv, http.MethodGet, "/nope", "", nil)
	assert.Equal(t, http.StatusUnauthorized, a.status, "no route information before authentication")
	a = tlsDo(t, srv, http.MethodGet, "/nope", "Bearer "+testToken, nil)
	assert.Equal(t, http.StatusNotFound, a.status)
}

func TestTCPLimitsTheBody(t *testing.T) {
	fake, srv := newTLSFixture(t)
	a := tlsDo(t, srv, http.MethodPost, "/v1/networks", "Bearer "+testToken, bigBody())
	assert.Equal(t, http.StatusRequestEntityTooLarge, a.status)
	assert.Contains(t, a.err.Message, "larger than the limit")
	assert.Empty(t, fake.Calls())
}

func TestTCPRefusesPlainHTTP(t *testing.T) {
	fake, srv := newTLSFixture(t)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+srv.Addr+"/v1/networks", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := hc.Do(req)
	if err == nil {
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "a plaintext request is answered 400 by the TLS server")
	}
	assert.Empty(t, fake.Calls(), "a plaintext request never reaches the service")
}

func TestTCPRefusesOldTLS(t *testing.T) {
	_, srv := newTLSFixture(t)
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", srv.Addr, &tls.Config{RootCAs: srv.Cert.Pool, MaxVersion: tls.VersionTLS11})
	if err == nil {
		_ = conn.Close()
	}
	require.Error(t, err)

	conn, err = tls.DialWithDialer(d, "tcp", srv.Addr, &tls.Config{RootCAs: srv.Cert.Pool, MinVersion: tls.VersionTLS13})
	require.NoError(t, err, "TLS 1.3 works")
	_ = conn.Close()
}

func TestListenTCPNeedsACertificate(t *testing.T) {
	for _, cfg := range []*tls.Config{nil, {}} {
		_, err := api.ListenTCP("127.0.0.1:0", cfg)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate")
	}
}

func TestHTTPSClient(t *testing.T) {
	t.Run("end to end with the token", func(t *testing.T) {
		fake, srv := newTLSFixture(t)
		fake.Summaries = []api.NetworkSummary{{Name: "shop"}}
		c, err := api.NewHTTPSClient(srv.URL, testToken, srv.Cert.ClientConfig())
		require.NoError(t, err)
		assert.Equal(t, srv.URL, c.Target())
		assert.Empty(t, c.Socket())
		list, err := c.Networks(t.Context())
		require.NoError(t, err)
		assert.Equal(t, fake.Summaries, list)
		_, err = c.ApplyRaw(t.Context(), apitest.SpecDoc("shop", 3))
		require.NoError(t, err)
		require.NoError(t, c.DeleteNetwork(t.Context(), "shop", false))
		assert.Equal(t, []string{"Networks()", "Apply(shop, 3)", "DeleteNetwork(shop, false)"}, fake.Calls())
	})
	t.Run("wrong token", func(t *testing.T) {
		fake, srv := newTLSFixture(t)
		c, err := api.NewHTTPSClient(srv.URL, "not-the-token", srv.Cert.ClientConfig())
		require.NoError(t, err)
		_, err = c.Networks(t.Context())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "bearer token")
		assert.Empty(t, fake.Calls())
	})
	t.Run("server not trusted", func(t *testing.T) {
		fake, srv := newTLSFixture(t)
		c, err := api.NewHTTPSClient(srv.URL, testToken, nil)
		require.NoError(t, err)
		_, err = c.Networks(t.Context())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate")
		assert.Contains(t, err.Error(), srv.URL)
		assert.Empty(t, fake.Calls())
	})
	t.Run("nobody listening", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		c, err := api.NewHTTPSClient("https://"+addr, testToken, nil)
		require.NoError(t, err)
		_, err = c.Networks(t.Context())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "cannot reach znetd at https://"+addr)
	})
}

func TestNewHTTPSClientChecksItsArguments(t *testing.T) {
	tests := []struct {
		name, url, token, want string
	}{
		{"http", "http://127.0.0.1:8443", testToken, "needs https"},
		{"unix", "unix:///run/znet/znetd.sock", testToken, "needs https"},
		{"no port", "https://127.0.0.1", testToken, "want https://host:port"},
		{"no host", "https:///x", testToken, "want https://host:port"},
		{"path", "https://127.0.0.1:8443/v1", testToken, "only a host and a port"},
		{"user", "https://u@127.0.0.1:8443", testToken, "only a host and a port"},
		{"no token", "https://127.0.0.1:8443", "", "needs a bearer token"},
		{"token with a space", "https://127.0.0.1:8443", "a b", "printable ASCII"},
		{"token with a newline", "https://127.0.0.1:8443", "a\nb", "printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := api.NewHTTPSClient(tt.url, tt.token, nil)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestReadTokenFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // the token, or a part of the error
		unsafe  bool
	}{
		{"private with a newline", testToken + "\n", 0o600, testToken, false},
		{"read only", "  " + testToken + " \n", 0o400, testToken, false},
		{"world readable", testToken, 0o644, "mode 0644", true},
		{"group readable", testToken, 0o640, "mode 0640", true},
		{"group writable only", testToken, 0o620, "mode 0620", true},
		{"empty", "", 0o600, "is empty", false},
		{"blank", " \n\t\n", 0o600, "is empty", false},
		{"two words", "a b\n", 0o600, "printable ASCII", false},
		{"too long", strings.Repeat("a", 5000), 0o600, "longer than 4096 bytes", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))
			require.NoError(t, os.Chmod(path, tt.mode))
			token, err := api.ReadTokenFile(path)
			if tt.want == testToken {
				require.NoError(t, err)
				assert.Equal(t, testToken, token)
				return
			}
			require.Error(t, err)
			assert.Empty(t, token)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, tt.unsafe, errors.Is(err, api.ErrUnsafeFile))
			assert.NotContains(t, err.Error(), testToken, "the token is not in the error")
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := api.ReadTokenFile(filepath.Join(t.TempDir(), "nope"))
		require.ErrorIs(t, err, os.ErrNotExist)
	})
	t.Run("a directory", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.Chmod(dir, 0o700))
		_, err := api.ReadTokenFile(dir)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "not a regular file")
	})
}

func TestTLSConfigFiles(t *testing.T) {
	cert := apitest.NewCert(t)
	cfg, err := api.ServerTLSConfig(cert.CertFile, cert.KeyFile)
	require.NoError(t, err)
	assert.Len(t, cfg.Certificates, 1)
	assert.Equal(t, uint16(tls.VersionTLS12), cfg.MinVersion)

	_, err = api.ServerTLSConfig(cert.CertFile, cert.CertFile)
	require.Error(t, err, "a certificate is not a key")
	_, err = api.ServerTLSConfig(filepath.Join(t.TempDir(), "nope.pem"), cert.KeyFile)
	require.ErrorIs(t, err, os.ErrNotExist)

	ccfg, err := api.ClientTLSConfig(cert.CertFile)
	require.NoError(t, err)
	assert.NotNil(t, ccfg.RootCAs)
	ccfg, err = api.ClientTLSConfig("")
	require.NoError(t, err)
	assert.Nil(t, ccfg.RootCAs, "the system's roots")
	_, err = api.ClientTLSConfig(cert.KeyFile)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no PEM certificate")
}

func TestTCPDropsStalledClients(t *testing.T) {
	t.Parallel()
	_, srv := newTLSFixture(t)
	// The server's header timeout is 10 s: a client that stalls during
	// the handshake, or after it while sending the headers, is cut off.
	const limit = 15 * time.Second
	tests := []struct {
		name string
		dial func(t *testing.T) net.Conn
	}{
		{"no handshake", func(t *testing.T) net.Conn {
			conn, err := net.Dial("tcp", srv.Addr)
			require.NoError(t, err)
			return conn
		}},
		{"half the headers", func(t *testing.T) net.Conn {
			conn, err := tls.Dial("tcp", srv.Addr, srv.Cert.ClientConfig())
			require.NoError(t, err)
			_, err = conn.Write([]byte("GET /v1/networks HTTP/1.1\r\nHost: znetd\r\n"))
			require.NoError(t, err)
			return conn
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn := tt.dial(t)
			defer func() { _ = conn.Close() }()
			start := time.Now()
			require.NoError(t, conn.SetReadDeadline(start.Add(limit)))
			_, err := io.Copy(io.Discard, conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept a stalled connection open for %s", limit)
			}
			assert.Less(t, time.Since(start), limit)
		})
	}
}
