package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
)

func TestParseFlagsRemoteAPI(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // part of the error; "" for none
	}{
		{"off by default", nil, ""},
		{"all three", []string{"--listen", "127.0.0.1:8443", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--token-file", "t"}, ""},
		{"ipv6 listen", []string{"--listen", "[::1]:8443", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--token-file", "t"}, ""},
		{"no cert", []string{"--listen", "127.0.0.1:8443", "--tls-key", "k.pem", "--token-file", "t"}, "--listen needs --tls-cert"},
		{"no key", []string{"--listen", "127.0.0.1:8443", "--tls-cert", "c.pem", "--token-file", "t"}, "--listen needs --tls-key"},
		{"no token", []string{"--listen", "127.0.0.1:8443", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "--listen needs --token-file"},
		{"listen without port", []string{"--listen", "127.0.0.1", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--token-file", "t"}, "want host:port"},
		{"cert without listen", []string{"--tls-cert", "c.pem"}, "--tls-cert is only for the remote API"},
		{"token without listen", []string{"--token-file", "t"}, "--token-file is only for the remote API"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args)
			if tt.want == "" {
				require.NoError(t, err)
				assert.Equal(t, len(tt.args) > 0, o.listen != "", "--listen is off unless given")
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestLoadRemote(t *testing.T) {
	cert := apitest.NewCert(t)
	dir := t.TempDir()
	writeToken := func(t *testing.T, content string, mode os.FileMode) string {
		path := filepath.Join(dir, t.Name()[len("TestLoadRemote/"):])
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		require.NoError(t, os.Chmod(path, mode))
		return path
	}
	opts := func(certFile, keyFile, tokenFile string) options {
		return options{listen: "127.0.0.1:0", tlsCert: certFile, tlsKey: keyFile, tokenFile: tokenFile}
	}

	t.Run("off", func(t *testing.T) {
		r, err := loadRemote(options{})
		require.NoError(t, err)
		assert.Nil(t, r)
	})
	t.Run("good", func(t *testing.T) {
		r, err := loadRemote(opts(cert.CertFile, cert.KeyFile, writeToken(t, "tok-123\n", 0o600)))
		require.NoError(t, err)
		assert.Equal(t, "tok-123", r.token)
		assert.Len(t, r.tls.Certificates, 1)
		l, err := api.ListenTCP("127.0.0.1:0", r.tls)
		require.NoError(t, err)
		require.NoError(t, l.Close())
	})
	tests := []struct {
		name          string
		cert, key     string
		token         string
		mode          os.FileMode
		want          string
		wantUnsafeErr bool
	}{
		{"world readable token", cert.CertFile, cert.KeyFile, "tok", 0o644, "--token-file: token file", true},
		{"group readable token", cert.CertFile, cert.KeyFile, "tok", 0o640, "chmod 600", true},
		{"empty token", cert.CertFile, cert.KeyFile, "\n", 0o600, "is empty", false},
		{"missing cert", filepath.Join(dir, "nope.pem"), cert.KeyFile, "tok", 0o600, "--tls-cert/--tls-key: loading the TLS certificate", false},
		{"missing key", cert.CertFile, filepath.Join(dir, "nope.key"), "tok", 0o600, "--tls-cert/--tls-key:", false},
		{"key is not a key", cert.CertFile, cert.CertFile, "tok", 0o600, "--tls-cert/--tls-key:", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := loadRemote(opts(tt.cert, tt.key, writeToken(t, tt.token, tt.mode)))
			require.Error(t, err)
			assert.Nil(t, r)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, tt.wantUnsafeErr, errors.Is(err, api.ErrUnsafeFile))
		})
	}
	t.Run("missing token file", func(t *testing.T) {
		_, err := loadRemote(opts(cert.CertFile, cert.KeyFile, filepath.Join(dir, "absent")))
		require.ErrorIs(t, err, os.ErrNotExist)
		assert.Contains(t, err.Error(), "--token-file")
	})
}

func TestRunRefusesABadTokenFileBeforeListening(t *testing.T) {
	cert := apitest.NewCert(t)
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("tok"), 0o644))
	socket := filepath.Join(dir, "znetd.sock")
	err := run([]string{"--socket", socket, "--state-dir", filepath.Join(dir, "state"),
		"--listen", "127.0.0.1:0", "--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile, "--token-file", token})
	require.ErrorIs(t, err, api.ErrUnsafeFile)
	_, statErr := os.Stat(socket)
	assert.ErrorIs(t, statErr, os.ErrNotExist, "nothing was started")
	_, statErr = os.Stat(filepath.Join(dir, "state"))
	assert.ErrorIs(t, statErr, os.ErrNotExist, "no state was touched")
}
