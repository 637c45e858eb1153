package api_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/spec"
)

// TestOneFieldErrorType checks that a bad field of a request and one of a
// spec are one type and one kind, and answer alike: 400 naming the field,
// with the context wrapped around it kept.
func TestOneFieldErrorType(t *testing.T) {
	err := api.Invalid("listen_port", "%d is not a UDP port (1-65535)", 0)
	var fe *spec.FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "listen_port", fe.Field)
	assert.ErrorIs(t, err, api.ErrInvalid)
	assert.ErrorIs(t, err, spec.ErrInvalid)
	assert.NotErrorIs(t, err, api.ErrConflict)

	tests := []struct {
		name  string
		err   error
		field string
		msg   string
	}{
		{"request field", err, "listen_port", "0 is not a UDP port (1-65535)"},
		{"spec field", &spec.FieldError{Field: "nodes[0].subnet", Reason: "is required"}, "nodes[0].subnet", "is required"},
		{"wrapped", fmt.Errorf("attaching web: %w", api.Invalid("ipv4", "10.20.1.1 is the gateway")), "ipv4",
			"attaching web: ipv4: 10.20.1.1 is the gateway"},
		{"no field", api.Invalid("", "reading the request body: EOF"), "", "reading the request body: EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := api.StatusOf(tt.err)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, tt.field, body.Field)
			assert.Equal(t, tt.msg, body.Message)
			assert.True(t, errors.Is(body, api.ErrInvalid), "the body's kind")
		})
	}
}
