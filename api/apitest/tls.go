package apitest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/znet/znet/api"
)

// Cert is a fresh self-signed ECDSA certificate for 127.0.0.1, ::1 and
// localhost, written to files in a temporary directory.
type Cert struct {
	// CertFile and KeyFile are the PEM certificate and its private key
	// (mode 0600).
	CertFile, KeyFile string
	// TLS is the certificate for a tls.Config.
	TLS tls.Certificate
	// Pool trusts the certificate, for a client.
	Pool *x509.CertPool
}

// NewCert makes a self-signed certificate valid for an hour, for loopback
// addresses only.
func NewCert(t testing.TB) *Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating a key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "znetd test"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("creating a certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("encoding the key: %v", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	dir := t.TempDir()
	c := &Cert{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), Pool: x509.NewCertPool()}
	if err := os.WriteFile(c.CertFile, certPEM, 0o600); err != nil {
		t.Fatalf("writing the certificate: %v", err)
	}
	if err := os.WriteFile(c.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatalf("writing the key: %v", err)
	}
	if c.TLS, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("loading the key pair: %v", err)
	}
	c.Pool.AppendCertsFromPEM(certPEM)
	return c
}

// ClientConfig returns a client TLS configuration that trusts only c.
func (c *Cert) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: c.Pool, MinVersion: tls.VersionTLS12}
}

// TLSServer is an api.Server on a TLS listener, started by ServeTLS.
type TLSServer struct {
	// URL is the server's base URL, https://127.0.0.1:PORT.
	URL string
	// Addr is the listener's address, 127.0.0.1:PORT.
	Addr string
	// Token is the bearer token the server requires, and TokenFile a
	// private (0600) file holding it.
	Token, TokenFile string
	// Cert is the server's self-signed certificate; Cert.CertFile is the
	// CA file a client needs.
	Cert *Cert
}

// ServeTLS runs an api.Server for svc on a TLS listener
// on 127.0.0.1 with a fresh self-signed certificate, requiring token. The
// server is shut down when the test ends.
func ServeTLS(t testing.TB, svc api.Service, token string) *TLSServer {
	t.Helper()
	cert := NewCert(t)
	l, err := api.ListenTCP("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert.TLS}})
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatalf("writing the token file: %v", err)
	}
	srv := api.NewServer(svc, api.ServerOptions{Token: token})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutting the server down: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serving: %v", err)
		}
	})
	addr := l.Addr().String()
	return &TLSServer{URL: "https://" + addr, Addr: addr, Token: token, TokenFile: tokenFile, Cert: cert}
}
