// Package spec defines a network's declarative specification (the JSON an
// orchestrator sends to every member node), decodes it strictly and validates
// it field by field.
//
// Parse only parses: it refuses anything it does not understand (unknown or
// repeated fields, wrong JSON types, trailing data, oversized documents,
// prefixes that do not parse); Validate checks what the values mean, once,
// where a spec enters the service (the daemon's Apply); Decode is the two
// with defaults, for callers that hold the node id. Every problem they
// find is a *FieldError naming the JSON path of the field, so an API can
// answer {"error": ..., "field": ...}; deploy and zos refuse their own
// documents with it too. SetDefaults fills in the
// optional ipv6_range; a missing mtu stays zero, for each node to derive
// from its own underlay. ParseEndpoint and ValidName are shared with the
// other packages that read endpoints and names.
//
// It knows nothing about the node that applies the spec: checks that need the
// node's own state (its reserved key and port, the generation it already has)
// belong to the daemon.
package spec
