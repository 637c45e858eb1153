package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
)

// MinTLSVersion is the oldest TLS version the TCP listener and the https
// client accept.
const MinTLSVersion = tls.VersionTLS12

// maxTokenFile bounds the size of a token file.
const maxTokenFile = 4096

// ErrUnsafeFile is returned (wrapped) by ReadTokenFile when the token file
// can be read by users other than its owner.
var ErrUnsafeFile = errors.New("file is readable by others")

// ListenTCP listens on the TCP address addr (host:port) for the remote API
// and wraps every connection in TLS with a copy of cfg, raised to at least
// MinTLSVersion. cfg must carry a certificate. Serve the listener with a
// Server whose ServerOptions.Token is set: TLS alone does not authenticate
// the caller.
func ListenTCP(addr string, cfg *tls.Config) (net.Listener, error) {
	if cfg == nil || (len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil) {
		return nil, errors.New("the TCP API needs a TLS certificate")
	}
	cfg = cfg.Clone()
	if cfg.MinVersion < MinTLSVersion {
		cfg.MinVersion = MinTLSVersion
	}
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return tls.NewListener(l, cfg), nil
}

// ServerTLSConfig loads a PEM certificate (chain) and its private key and
// returns a server TLS configuration for ListenTCP.
func ServerTLSConfig(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: MinTLSVersion}, nil
}

// ClientTLSConfig returns a client TLS configuration that trusts the PEM
// certificates in caFile, or the system's roots when caFile is "".
func ClientTLSConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: MinTLSVersion}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// ReadTokenFile reads a bearer token from path: the file's content without
// surrounding white space. It refuses a file that group or others may
// access (mode & 0o077 != 0, ErrUnsafeFile), an empty token and a token
// with white space or control characters inside.
func ReadTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading the token file: %w", err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("reading the token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("token file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("token file %s has mode %04o; make it private (chmod 600): %w", path, perm, ErrUnsafeFile)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("reading the token file: %w", err)
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("token file %s is longer than %d bytes", path, maxTokenFile)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	if err := checkToken(token); err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	return token, nil
}

// checkToken accepts tokens that fit in an Authorization header as is.
func checkToken(token string) error {
	for _, r := range token {
		if r <= ' ' || r >= 0x7f {
			return errors.New("the token must be printable ASCII without spaces")
		}
	}
	return nil
}

// requireToken answers 401 to a request without "Authorization: Bearer
// token" and passes the others to next. Tokens are compared in constant
// time (of their SHA-256 sums, so the length leaks nothing either).
func requireToken(token string, log *slog.Logger, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			log.Warn("api request refused: no valid bearer token", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="znetd"`)
			// The body is not read; the server closes the connection
			// rather than drain a large one.
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusUnauthorized, &Error{Message: "a valid bearer token is required (Authorization: Bearer TOKEN)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
