package strictjson

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testErr is a caller's error type: the field and the message.
type testErr struct{ path, msg string }

func (e *testErr) Error() string { return e.path + ": " + e.msg }

func testFail(path, format string, args ...any) error {
	return &testErr{path: path, msg: fmt.Sprintf(format, args...)}
}

// requireFail checks that err was made by testFail for path with msg.
func requireFail(t *testing.T, err error, path, msg string) {
	t.Helper()
	var te *testErr
	require.ErrorAs(t, err, &te)
	assert.Equal(t, path, te.path)
	assert.Equal(t, msg, te.msg)
}

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
	}{
		{`{"a":1}`, "an object"},
		{` [1]`, "an array"},
		{`"x"`, "a string"},
		{`true`, "a boolean"},
		{`false`, "a boolean"},
		{`null`, "null"},
		{`-1.5e3`, "a number"},
		{" \t\r\n", "nothing"},
		{``, "nothing"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			assert.Equal(t, tc.want, Kind(json.RawMessage(tc.raw)))
		})
	}
}

func TestFields(t *testing.T) {
	t.Run("order and paths", func(t *testing.T) {
		var got []string
		err := Fields(json.RawMessage(`{"b": 1, "a": {"x": 2}}`), "top", testFail, func(key, path string, val json.RawMessage) error {
			got = append(got, key+"|"+path+"|"+string(val))
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, []string{"b|top.b|1", `a|top.a|{"x": 2}`}, got)
	})
	t.Run("no prefix", func(t *testing.T) {
		var paths []string
		err := Fields(json.RawMessage(`{"a": 1}`), "", testFail, func(_, path string, _ json.RawMessage) error {
			paths = append(paths, path)
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, []string{"a"}, paths)
	})
	t.Run("fn error stops", func(t *testing.T) {
		calls := 0
		err := Fields(json.RawMessage(`{"a": 1, "b": 2}`), "", testFail, func(key, path string, _ json.RawMessage) error {
			calls++
			return testFail(path, "unknown field")
		})
		requireFail(t, err, "a", "unknown field")
		assert.Equal(t, 1, calls)
	})
	for _, tc := range []struct {
		name, raw, path, msg string
	}{
		{"repeated key", `{"a": 1, "a": 2}`, "p.a", "field appears more than once"},
		{"array", `[1]`, "p", "must be an object, not an array"},
		{"null", `null`, "p", "must be an object, not null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Fields(json.RawMessage(tc.raw), "p", testFail, func(string, string, json.RawMessage) error { return nil })
			requireFail(t, err, tc.path, tc.msg)
		})
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		name, raw, want, msg string
	}{
		{"string", `"a\u00e9"`, "aé", ""},
		{"empty", `""`, "", ""},
		{"number", `12`, "", "must be a string, not a number"},
		{"null", `null`, "", "must be a string, not null"},
		{"bad escape", `"\x"`, "", "malformed string: invalid character 'x' in string escape code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			err := String(json.RawMessage(tc.raw), "f", testFail, &got)
			if tc.msg != "" {
				requireFail(t, err, "f", tc.msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestNumber(t *testing.T) {
	for _, tc := range []struct {
		name, raw, want, msg string
	}{
		{"integer", `51820`, "51820", ""},
		{"float", `1.5e3`, "1.5e3", ""},
		{"digits as a string", `"51820"`, "", "must be a number, not a string"},
		{"boolean", `true`, "", "must be a number, not a boolean"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Number(json.RawMessage(tc.raw), "n", testFail)
			if tc.msg != "" {
				requireFail(t, err, "n", tc.msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestArray(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      []string
		msg       string
	}{
		{"elements", `[1, "a", {"b": 2}]`, []string{`1`, `"a"`, `{"b": 2}`}, ""},
		{"empty", `[]`, []string{}, ""},
		{"object", `{"a": 1}`, nil, "must be an array, not an object"},
		{"null", `null`, nil, "must be an array, not null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, err := Array(json.RawMessage(tc.raw), "a", testFail)
			if tc.msg != "" {
				requireFail(t, err, "a", tc.msg)
				return
			}
			require.NoError(t, err)
			got := []string{}
			for _, it := range items {
				got = append(got, string(it))
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzString checks that String decodes every JSON string as
// encoding/json does, whether it takes the plain path or not.
func FuzzString(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b"`, `"\u00e9"`, "\"\xff\"", "\"a\tb\"", `""`, `"10.20.0.0/16"`} {
		f.Add(s)
	}
	fail := func(field, format string, args ...any) error { return fmt.Errorf(field+": "+format, args...) }
	f.Fuzz(func(t *testing.T, raw string) {
		var want string
		wantErr := json.Unmarshal([]byte(raw), &want)
		if Kind(json.RawMessage(raw)) != "a string" {
			return
		}
		var got string
		err := String(json.RawMessage(raw), "f", fail, &got)
		if wantErr != nil {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		require.Equal(t, want, got)
	})
}

func TestFieldsRefusesAnUnclosedObject(t *testing.T) {
	fail := func(field, format string, args ...any) error { return &testErr{field, fmt.Sprintf(format, args...)} }
	err := Fields(json.RawMessage(`{"a":1`), "spec", fail, func(string, string, json.RawMessage) error { return nil })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not closed")
	require.NoError(t, Fields(json.RawMessage(`{"a":1}`), "spec", fail, func(string, string, json.RawMessage) error { return nil }))
}

// TestDocument checks what a whole document may be: one JSON value within
// the limit, with nothing but white space after it.
func TestDocument(t *testing.T) {
	for _, tc := range []struct {
		name, data, want, msg string
	}{
		{"object", ` {"a": 1} ` + "\n", `{"a": 1}`, ""},
		{"array passes, for Fields to refuse", `[1]`, `[1]`, ""},
		{"empty", ` `, "", "empty document"},
		{"truncated", `{"a": `, "", "malformed JSON: truncated"},
		{"malformed", `{"a": x}`, "", "malformed JSON at byte 7: invalid character 'x' looking for beginning of value"},
		{"trailing", `{} {}`, "", "trailing data after the JSON object at byte 3"},
		{"too large", `{"a": "0123456789"}`, "", "document is 19 bytes, larger than the limit of 18"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := Document([]byte(tc.data), 18, testFail)
			if tc.msg != "" {
				requireFail(t, err, "", tc.msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(raw))
		})
	}
}
