package deploy_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
	"github.com/znet/znet/deploy"
)

func TestConnectHTTPS(t *testing.T) {
	const token = "deploy-test-token"
	fake := &apitest.Fake{Summaries: []api.NetworkSummary{{Name: "demo"}}}
	srv := apitest.ServeTLS(t, fake, token)
	ref := deploy.NodeRef{ID: "a", API: srv.URL, TokenFile: srv.TokenFile, CAFile: srv.Cert.CertFile, Hidden: true}

	t.Run("talks to the node with the token", func(t *testing.T) {
		c, err := deploy.Connect(ref)
		require.NoError(t, err)
		list, err := c.Networks(t.Context())
		require.NoError(t, err)
		assert.Equal(t, fake.Summaries, list)
		assert.Equal(t, []string{"Networks()"}, fake.Calls())
	})

	dir := t.TempDir()
	loose := filepath.Join(dir, "loose")
	require.NoError(t, os.WriteFile(loose, []byte(token), 0o644))
	require.NoError(t, os.Chmod(loose, 0o644))
	tests := []struct {
		name   string
		change func(r *deploy.NodeRef)
		want   string
	}{
		{"token file readable by others", func(r *deploy.NodeRef) { r.TokenFile = loose }, "token_file: token file " + loose + " has mode 0644"},
		{"token file missing", func(r *deploy.NodeRef) { r.TokenFile = filepath.Join(dir, "nope") }, "token_file: reading the token file"},
		{"CA file missing", func(r *deploy.NodeRef) { r.CAFile = filepath.Join(dir, "nope.pem") }, "ca_file: reading the CA file"},
		{"CA file not PEM", func(r *deploy.NodeRef) { r.CAFile = srv.TokenFile }, "ca_file: " + srv.TokenFile + " holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ref
			tt.change(&r)
			c, err := deploy.Connect(r)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), token)
		})
	}
	t.Run("without the CA the node is not trusted", func(t *testing.T) {
		r := ref
		r.CAFile = ""
		c, err := deploy.Connect(r)
		require.NoError(t, err)
		_, err = c.Networks(t.Context())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate")
	})
}
