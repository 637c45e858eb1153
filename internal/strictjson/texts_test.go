package strictjson

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rec is an element for TextObjects' tests: two strings, a list and the
// other members seen, so that every way of reading a member shows.
type rec struct {
	a, b   string
	list   []string
	others []string
}

var recTexts = []TextField[rec]{
	{Key: "a", To: func(r *rec) *string { return &r.a }},
	{Key: "b", To: func(r *rec) *string { return &r.b }},
}

// recOther reads "list" as strings, refuses "z" and records the rest.
func recOther(r *rec) FieldFunc {
	return func(key, path string, val json.RawMessage) error {
		switch key {
		case "list":
			return Strings(val, path, testFail, &r.list)
		case "z":
			return testFail(path, "unknown field")
		}
		r.others = append(r.others, key+"|"+path+"|"+string(val))
		return nil
	}
}

// recFields is the reference: Objects with Members, as spec's nodes were
// read before TextObjects.
func recFields(r *rec) FieldFunc {
	return Members(testFail, []Text{{Key: "a", To: &r.a}, {Key: "b", To: &r.b}}, recOther(r))
}

// checkTextObjects requires TextObjects to give for raw exactly what
// Objects gives with the reference fields function.
func checkTextObjects(t *testing.T, raw []byte) {
	t.Helper()
	want, wantErr := Objects(raw, "list", testFail, recFields)
	got, err := TextObjects(raw, "list", testFail, recTexts, recOther)
	require.Equal(t, wantErr, err, "%s", raw)
	require.Equal(t, want, got, "%s", raw)
}

var textObjectsSeeds = []string{
	`[{"a": "1", "b": "2"}, {"b": "x"}, {}]`,
	`[]`, ` [ ] `, `[{}]`, `{}`, `"s"`, `null`, ``, `[`,
	`[{"a": "1"}, "b"]`,
	`[{"a": 1}]`, `[{"a": null}]`, `[{"a": "\u0031"}]`, "[{\"a\": \"\xff\"}]",
	`[{"a": "1", "a": "2"}]`, `[{"q": 1, "q": 2}]`,
	`[{"\u0061": "1"}]`, `[{"a\"": "1"}]`,
	`[{"list": ["x", "y"], "c": {"d": [1, 2]}}]`, `[{"list": ["x", 1]}]`,
	`[{"a": "1"}, {"z": "2"}]`, `[{"a": "1"} {"b": "2"}]`, `[{"a": "1"},]`,
	`[{"a": "1"}] x`, `[{"a": "1", "b": "2", "c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "h": 8, "i": 9}]`,
	`[{"a":"1"},{"a":"2"},{"a":"3"},{"a":"4"},{"a":"5"},{"a":"6"},{"a":"7"},{"a":"8"},{"a":"9"},{"a":"10"},{"a":"11"},{"a":"12"}]`,
	`[` + strings.Repeat(`{"c":`, 1000) + `1` + strings.Repeat(`}`, 1000) + `]`,
}

// TestTextObjectsMatchesObjects compares TextObjects with the reference on
// the seeds and on random arrays built from the pieces that take it off
// its own way: escapes, repeats, other types, other members, bad syntax.
func TestTextObjectsMatchesObjects(t *testing.T) {
	for _, seed := range textObjectsSeeds {
		checkTextObjects(t, []byte(seed))
	}
	rng := rand.New(rand.NewPCG(17, 3))
	own := 0 // how many took TextObjects' own way, which must be tested too
	for range 20000 {
		doc := []byte(randomArray(rng))
		checkTextObjects(t, doc)
		if _, ok := textObjects(doc, "list", recTexts, recOther); ok {
			own++
		}
	}
	require.Greater(t, own, 2000, "too few random arrays take TextObjects' own way")
	require.Less(t, own, 18000, "too few random arrays take the reference")
}

// randomArray returns an array (mostly) of objects, mostly well-formed.
func randomArray(rng *rand.Rand) string {
	keys := []string{`"a"`, `"b"`, `"a"`, `"b"`, `"c"`, `"list"`, `"z"`, `"\u0062"`, `"é"`, `"a\\"`}
	vals := []string{`"x"`, `"10.0.0.0/24"`, `""`, `"\u0078"`, `"é"`, "\"\xff\"", `1`, `null`, `true`, `{}`, `{"a": "1"}`,
		`["s", "t"]`, `[1]`, `[]`}
	space := []string{"", " ", "\n\t"}
	pick := func(l []string) string { return l[rng.IntN(len(l))] }
	var sb strings.Builder
	sb.WriteString(pick(space) + "[")
	for i := range rng.IntN(5) {
		if i > 0 {
			sb.WriteString(pick(space) + "," + pick(space))
		}
		if rng.IntN(20) == 0 {
			sb.WriteString(pick(vals))
			continue
		}
		sb.WriteString("{")
		for j := range rng.IntN(5) {
			if j > 0 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, "%s%s:%s%s", pick(space), pick(keys), pick(space), pick(vals))
		}
		sb.WriteString("}")
	}
	sb.WriteString("]" + pick(space))
	doc := sb.String()
	if rng.IntN(10) == 0 { // break it somewhere
		i := rng.IntN(len(doc))
		doc = doc[:i] + pick([]string{"", ",", "}", "]", `"`, "x"}) + doc[i+1:]
	}
	return doc
}

// FuzzTextObjects checks that TextObjects gives what the reference gives,
// results and errors, for any input.
func FuzzTextObjects(f *testing.F) {
	for _, seed := range textObjectsSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(checkTextObjects)
}

// checkDocumentFields requires DocumentFields to give for data what
// Document, Kind and Fields give: the members fn sees, and the error.
func checkDocumentFields(t *testing.T, data []byte) {
	t.Helper()
	record := func(seen *[]string) FieldFunc {
		return func(key, path string, val json.RawMessage) error {
			*seen = append(*seen, key+"|"+path+"|"+string(val))
			if key == "z" {
				return testFail(path, "unknown field")
			}
			return nil
		}
	}
	notObject := func(k string) error { return testFail("", "must be a JSON object, not %s", k) }
	var want, got []string
	wantErr := func() error {
		raw, err := Document(data, 200, testFail)
		if err != nil {
			return err
		}
		if k := Kind(raw); k != "an object" {
			return notObject(k)
		}
		return Fields(raw, "", testFail, record(&want))
	}()
	err := DocumentFields(data, 200, testFail, notObject, record(&got))
	require.Equal(t, wantErr, err, "%q", data)
	require.Equal(t, want, got, "%q", data)
}

var documentFieldsSeeds = []string{
	`{"a": 1, "b": {"c": [1, "x"]}}`, ` {} `, `{"a": 1, "a": 2}`, `{"z": 1, "a": 2}`, `{"\u0061": 1}`,
	`[1]`, `"s"`, `null`, ``, ` `, `{"a": 1`, `{"a": x}`, `{} {}`, "\xef\xbb\xbf{}",
	`{"a": "` + strings.Repeat("x", 200) + `"}`, `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9}`,
	strings.Repeat(`{"c":`, 1001) + `1` + strings.Repeat(`}`, 1001),
}

func TestDocumentFieldsMatchesDocumentAndFields(t *testing.T) {
	for _, seed := range documentFieldsSeeds {
		checkDocumentFields(t, []byte(seed))
	}
	rng := rand.New(rand.NewPCG(5, 8))
	for range 5000 {
		doc := randomArray(rng)
		checkDocumentFields(t, []byte(`{"x":`+doc+`,"y":`+doc+"}"))
		checkDocumentFields(t, []byte(doc))
	}
}

// FuzzDocumentFields checks that DocumentFields gives what Document, Kind
// and Fields give, for any input.
func FuzzDocumentFields(f *testing.F) {
	for _, seed := range documentFieldsSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(checkDocumentFields)
}
