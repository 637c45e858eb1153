package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/spec"
)

func TestDecodeReserveRequest(t *testing.T) {
	got, err := decodeReserveRequest([]byte(`{"listen_port":51830}`))
	require.NoError(t, err)
	assert.Equal(t, 51830, got.ListenPort)
	// Only parsed: the Service says that 0 and 65536 are no UDP ports.
	for _, port := range []int{0, 65536} {
		got, err := decodeReserveRequest(fmt.Appendf(nil, `{"listen_port":%d}`, port))
		require.NoError(t, err)
		assert.Equal(t, port, got.ListenPort)
	}

	for _, c := range []struct{ name, body, field string }{
		{"port as string", `{"listen_port":"51830"}`, "listen_port"},
		{"port as boolean", `{"listen_port":true}`, "listen_port"},
		{"port beyond an int32", `{"listen_port":4294967296}`, "listen_port"},
		{"fractional port", `{"listen_port":5.5}`, "listen_port"},
		{"unknown field", `{"port":1}`, "port"},
		{"truncated", `{"listen_port":`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeReserveRequest([]byte(c.body))
			var e *spec.FieldError
			require.ErrorAs(t, err, &e)
			assert.ErrorIs(t, err, ErrInvalid)
			assert.Equal(t, c.field, e.Field)
		})
	}
}

func TestDecodeTapAttachRequest(t *testing.T) {
	got, err := decodeAttachRequest([]byte(`{"name":"vm1","tap":true,"mac":"02:00:00:00:00:01","queues":4}`))
	require.NoError(t, err)
	assert.Equal(t, AttachRequest{Name: "vm1", Tap: true, MAC: "02:00:00:00:00:01", Queues: 4}, got)

	for _, c := range []struct{ name, body, field string }{
		{"tap as string", `{"name":"vm1","tap":"yes"}`, "tap"},
		{"tap as number", `{"name":"vm1","tap":1}`, "tap"},
		{"queues as string", `{"name":"vm1","tap":true,"queues":"2"}`, "queues"},
		{"negative queues", `{"name":"vm1","tap":true,"queues":-1}`, "queues"},
		{"too many queues", `{"name":"vm1","tap":true,"queues":1e9}`, "queues"},
		{"mac as number", `{"name":"vm1","tap":true,"mac":2}`, "mac"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeAttachRequest([]byte(c.body))
			var e *spec.FieldError
			require.ErrorAs(t, err, &e)
			assert.Equal(t, c.field, e.Field)
		})
	}
}

// TestReadAllMatchesIOReadAll checks that readAll reads what io.ReadAll
// reads, whatever the announced size says, in small reads and with a
// failing reader too.
func TestReadAllMatchesIOReadAll(t *testing.T) {
	data := []byte(strings.Repeat("0123456789", 1000))
	fails := errors.New("read fails")
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(data) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"failing":  func() io.Reader { return io.MultiReader(bytes.NewReader(data[:700]), iotest.ErrReader(fails)) },
	}
	for name, reader := range readers {
		for _, size := range []int64{-1, 0, 1, 699, 700, 701, int64(len(data)) - 1, int64(len(data)), int64(len(data)) + 1, MaxBodySize + 1} {
			t.Run(fmt.Sprintf("%s/%d", name, size), func(t *testing.T) {
				want, wantErr := io.ReadAll(reader())
				got, err := readAll(reader(), size)
				require.Equal(t, wantErr, err)
				require.Equal(t, want, got)
			})
		}
	}
}
