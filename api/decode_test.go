package api

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeReserveRequest(t *testing.T) {
	got, err := decodeReserveRequest([]byte(`{"listen_port":51830}`))
	require.NoError(t, err)
	assert.Equal(t, 51830, got.ListenPort)

	for _, c := range []struct{ name, body, field string }{
		{"port as string", `{"listen_port":"51830"}`, "listen_port"},
		{"port as boolean", `{"listen_port":true}`, "listen_port"},
		{"port 0", `{"listen_port":0}`, "listen_port"},
		{"port 65536", `{"listen_port":65536}`, "listen_port"},
		{"fractional port", `{"listen_port":5.5}`, "listen_port"},
		{"unknown field", `{"port":1}`, "port"},
		{"truncated", `{"listen_port":`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeReserveRequest([]byte(c.body))
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.ErrorIs(t, err, ErrInvalid)
			assert.Equal(t, c.field, e.Field)
		})
	}
}
