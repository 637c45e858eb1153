// Package apitest helps test code that speaks the znet API: Fake is a
// hand-written api.Service that records its calls and returns canned
// answers, Serve runs an api.Server for a Service on a temporary Unix
// socket, and ServeTLS runs one on a loopback TLS listener that requires a
// bearer token, with a self-signed certificate from NewCert. It does no
// networking beyond those and keeps no state between tests.
package apitest
