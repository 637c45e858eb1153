// Package api is znetd's HTTP/JSON interface: the wire types, the Service the
// daemon implements, the server that exposes a Service on a Unix socket
// (root only, no further authentication) or on an optional TCP listener
// (TLS and a bearer token, see ListenTCP and ServerOptions.Token), and the
// client the CLI uses for either.
//
// Errors cross the wire as {"error": "...", "field": "..."} with 400 for bad
// input, 404 for unknown objects and 409 for conflicts; the client turns them
// back into *Error values that match ErrInvalid, ErrNotFound and ErrConflict
// with errors.Is.
package api
