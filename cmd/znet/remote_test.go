package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
)

func TestRemoteAPI(t *testing.T) {
	const token = "cli-test-token-42"
	writeFile := func(t *testing.T, content string, mode os.FileMode) string {
		path := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		require.NoError(t, os.Chmod(path, mode))
		return path
	}

	t.Run("works with the token and the CA", func(t *testing.T) {
		fake := &apitest.Fake{Summaries: []api.NetworkSummary{{Name: "shop"}}}
		srv := apitest.ServeTLS(t, fake, token)
		r := cli(t, "", "--api", srv.URL, "--token-file", srv.TokenFile, "--ca", srv.Cert.CertFile, "network", "list", "--json")
		require.Equal(t, 0, r.code, "stderr %s", r.stderr)
		assert.Contains(t, r.stdout, `"name": "shop"`)
		assert.Equal(t, []string{"Networks()"}, fake.Calls())
	})

	tests := []struct {
		name string
		args func(srv *apitest.TLSServer) []string
		code int
		want string
	}{
		{"wrong token", func(srv *apitest.TLSServer) []string {
			return []string{"--api", srv.URL, "--token-file", writeFile(t, "other-token", 0o600), "--ca", srv.Cert.CertFile}
		}, 1, "bearer token"},
		{"token file readable by others", func(srv *apitest.TLSServer) []string {
			return []string{"--api", srv.URL, "--token-file", writeFile(t, token, 0o644), "--ca", srv.Cert.CertFile}
		}, 1, "znet: --token-file: token file"},
		{"empty token file", func(srv *apitest.TLSServer) []string {
			return []string{"--api", srv.URL, "--token-file", writeFile(t, "", 0o600), "--ca", srv.Cert.CertFile}
		}, 1, "is empty"},
		{"server not trusted", func(srv *apitest.TLSServer) []string {
			return []string{"--api", srv.URL, "--token-file", srv.TokenFile}
		}, 1, "certificate"},
		{"CA file missing", func(srv *apitest.TLSServer) []string {
			return []string{"--api", srv.URL, "--token-file", srv.TokenFile, "--ca", filepath.Join(t.TempDir(), "nope.pem")}
		}, 1, "znet: --ca: "},
		{"http URL", func(srv *apitest.TLSServer) []string {
			return []string{"--api", strings.Replace(srv.URL, "https", "http", 1), "--token-file", srv.TokenFile}
		}, 1, "znet: --api: "},
		{"api without token file", func(srv *apitest.TLSServer) []string {
			return []string{"--api", srv.URL}
		}, 2, "--api needs --token-file"},
		{"token file without api", func(srv *apitest.TLSServer) []string {
			return []string{"--token-file", srv.TokenFile}
		}, 2, "--token-file is only for a remote API"},
		{"ca without api", func(srv *apitest.TLSServer) []string {
			return []string{"--ca", srv.Cert.CertFile}
		}, 2, "--ca is only for a remote API"},
		{"api and socket", func(srv *apitest.TLSServer) []string {
			return []string{"--api", srv.URL, "--token-file", srv.TokenFile, "--socket", "/run/znet/znetd.sock"}
		}, 2, "give --api or --socket, not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &apitest.Fake{}
			srv := apitest.ServeTLS(t, fake, token)
			r := cli(t, "", append(tt.args(srv), "network", "list")...)
			assert.Equal(t, tt.code, r.code)
			assert.Contains(t, r.stderr, tt.want)
			assert.NotContains(t, r.stderr, token, "the token is never printed")
			assert.Empty(t, r.stdout)
			assert.Empty(t, fake.Calls())
		})
	}
}
