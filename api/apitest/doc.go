// Package apitest helps test code that speaks the znet API: Fake is a
// hand-written api.Service that records its calls and returns canned
// answers, and Serve runs an api.Server for a Service on a temporary Unix
// socket. It does no networking beyond that socket and keeps no state
// between tests.
package apitest
