// Package spec defines a network's declarative specification (the JSON an
// orchestrator sends to every member node), decodes it strictly and validates
// it field by field.
//
// It knows nothing about the node that applies the spec: checks that need the
// node's own state (its reserved key and port, the generation it already has)
// belong to the daemon.
package spec
