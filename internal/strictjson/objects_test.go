package strictjson

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type pair struct{ a, b string }

// pairFields reads "a" and "b" as strings and refuses every other member.
func pairFields(p *pair) FieldFunc {
	return Members(testFail, []Text{{Key: "a", To: &p.a}, {Key: "b", To: &p.b}}, func(_, path string, _ json.RawMessage) error {
		return testFail(path, "unknown field")
	})
}

func TestObjects(t *testing.T) {
	got, err := Objects(json.RawMessage(`[{"a": "1"}, {"b": "2", "a": "3"}, {}]`), "list", testFail, pairFields)
	require.NoError(t, err)
	assert.Equal(t, []pair{{a: "1"}, {a: "3", b: "2"}, {}}, got)

	got, err = Objects(json.RawMessage(`[]`), "list", testFail, pairFields)
	require.NoError(t, err)
	assert.Equal(t, []pair{}, got, "an empty array is an empty list, not none")

	for _, tc := range []struct{ name, raw, path, msg string }{
		{"not an array", `{"a": "1"}`, "list", "must be an array, not an object"},
		{"element not an object", `[{"a": "1"}, "b"]`, "list[1]", "must be an object, not a string"},
		{"member of the wrong type", `[{"a": "1"}, {"b": 2}]`, "list[1].b", "must be a string, not a number"},
		{"other member", `[{"c": "1"}]`, "list[0].c", "unknown field"},
		{"repeated member", `[{"a": "1", "a": "2"}]`, "list[0].a", "field appears more than once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Objects(json.RawMessage(tc.raw), "list", testFail, pairFields)
			requireFail(t, err, tc.path, tc.msg)
		})
	}
}
