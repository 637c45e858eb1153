package strictjson

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// scanSeeds are documents on both sides of validity, and ones the scanner
// must get exactly right: escapes, numbers, nesting, repeated keys.
var scanSeeds = []string{
	`{}`, ` {"a": 1} `, `{"a":1,"a":2}`, `{"a\u0062":1,"ab":2}`, `{"a":"x\"y\\z\/\b\f\n\r\t\u00e9"}`,
	`{"n":[1,-0,0.5,1e5,1E+5,-2.5e-3,[],{}]}`, `{"a":true,"b":false,"c":null}`,
	`[]`, `[1, "a", {"b": [2]}]`, `"s"`, `12`, `true`, ``, `   `, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`,
	`[1,]`, `[01]`, `[1.]`, `[1e]`, `[-]`, `[.5]`, `[+1]`, `["\x"]`, `["\u12g4"]`, "[\"a\tb\"]",
	`{"a":1} {}`, `{"a":1}x`, `{1:2}`, `{"a" 1}`, `{"a":1 "b":2}`, `[tru]`, `[nul]`, `[falsey]`,
	"{\"\xff\":1}", "[\"\xc3\x28\"]", `{"a":{"b":{"c":[[[]]]}}}`, strings.Repeat("[", 1200) + strings.Repeat("]", 1200),
	`{"a":1}` + "\n", "\ufeff{}", `{"":1}`, `["\ud800"]`,
}

// transcript records what Fields, Array and Document do with data: every
// call of fn and the error, as text to compare.
func transcript(data []byte, document func([]byte, Fail) (json.RawMessage, error),
	fields func(json.RawMessage, string, Fail, FieldFunc) error,
	array func(json.RawMessage, string, Fail) ([]json.RawMessage, error)) string {
	var b strings.Builder
	raw, err := document(data, testFail)
	fmt.Fprintf(&b, "document %q %v\n", raw, err)
	if Kind(json.RawMessage(data)) == "an object" {
		err = fields(data, "p", testFail, func(key, path string, val json.RawMessage) error {
			fmt.Fprintf(&b, "%q %q %q\n", key, path, val)
			return nil
		})
		fmt.Fprintf(&b, "fields %v\n", err)
	}
	if Kind(json.RawMessage(data)) == "an array" {
		items, err := array(data, "p", testFail)
		fmt.Fprintf(&b, "array %q %v\n", items, err)
	}
	return b.String()
}

// checkScanner checks that the scanner accepts only valid JSON and that
// the fast paths do exactly what the encoding/json ones do.
func checkScanner(t *testing.T, data []byte) {
	_, ok := onlyValue(data)
	if ok && !json.Valid(data) {
		t.Fatalf("the scanner accepts %q, which is not JSON", data)
	}
	document := func(d []byte, f Fail) (json.RawMessage, error) { return Document(d, 1<<20, f) }
	fast := transcript(data, document, Fields, Array)
	slow := transcript(data, documentSlow, fieldsSlow, arraySlow)
	assert.Equal(t, slow, fast, "document %q", data)
}

func TestScannerMatchesEncodingJSON(t *testing.T) {
	for _, seed := range scanSeeds {
		checkScanner(t, []byte(seed))
	}
	t.Run("accepts what it should", func(t *testing.T) {
		for _, seed := range scanSeeds {
			if _, ok := onlyValue([]byte(seed)); json.Valid([]byte(seed)) && !ok && !strings.HasPrefix(seed, "[[[") {
				t.Errorf("the scanner refuses valid %q (it would work, slowly)", seed)
			}
		}
	})
}

func FuzzScanner(f *testing.F) {
	for _, seed := range scanSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(checkScanner)
}
