package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"
)

// Fail makes the error for the field at path (empty for the document
// itself), its message given as for fmt.Sprintf. Callers pass their own
// constructor, such as api.Invalid.
type Fail func(path, format string, args ...any) error

// Document returns the one JSON value that data holds, undecoded, for
// Fields to walk (which refuses any other type than an object). It
// refuses a document larger than limit bytes, an empty or malformed one
// and anything after the value; every error is about the document as a
// whole (path ""). The value is a part of data, not a copy, as are the
// values Fields and Array hand out: keep data unchanged while using them.
func Document(data []byte, limit int, fail Fail) (json.RawMessage, error) {
	if len(data) > limit {
		return nil, fail("", "document is %d bytes, larger than the limit of %d", len(data), limit)
	}
	if raw, ok := onlyValue(data); ok {
		return raw, nil
	}
	return documentSlow(data, fail)
}

// documentSlow is Document through encoding/json, for the errors.
func documentSlow(data []byte, fail Fail) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, syntaxErr(err, fail)
	}
	if rest := bytes.Trim(data[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, fail("", "trailing data after the JSON object at byte %d", len(data)-len(rest))
	}
	return raw, nil
}

// syntaxErr names what is wrong with a document that does not decode.
func syntaxErr(err error, fail Fail) error {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return fail("", "empty document")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fail("", "malformed JSON: truncated")
	case errors.As(err, &se):
		return fail("", "malformed JSON at byte %d: %s", se.Offset, se.Error())
	default:
		return fail("", "malformed JSON: %s", err.Error())
	}
}

// Kind names the JSON type of a syntactically valid value: "an object",
// "an array", "a string", "a boolean", "null", "a number", or "nothing" for
// an empty one.
func Kind(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// Fields calls fn for every member of the JSON object raw, in document
// order, with the member's key and its path (prefix.key, or key when prefix
// is empty); prefix is raw's own path. It refuses a value that is not an
// object, a malformed one and a key that appears twice, and stops at the
// first error fn returns.
func Fields(raw json.RawMessage, prefix string, fail Fail, fn FieldFunc) error {
	if k := Kind(raw); k != "an object" {
		return fail(prefix, "must be an object, not %s", k)
	}
	var buf [8]member
	if members, ok := wellFormedObject(raw, buf[:]); ok {
		return walkMembers(members, prefix, fail, fn)
	}
	return fieldsSlow(raw, prefix, fail, fn)
}

// fieldsSlow is Fields through encoding/json, for the errors.
func fieldsSlow(raw json.RawMessage, prefix string, fail Fail, fn FieldFunc) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '{'
		return fail(prefix, "malformed object: %v", err)
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail(prefix, "malformed object: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return fail(prefix, "malformed object: key %v is not a string", tok)
		}
		path := key
		if prefix != "" {
			path = prefix + "." + key
		}
		if seen[key] {
			return fail(path, "field appears more than once")
		}
		seen[key] = true
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return fail(path, "malformed value: %v", err)
		}
		if err := fn(key, path, val); err != nil {
			return err
		}
	}
	// More is false at the end of the input too: insist on the brace.
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return fail(prefix, "malformed object: not closed")
	}
	return nil
}

// String decodes the JSON string raw, the value of the field at path, into
// out; any other JSON type is refused.
func String(raw json.RawMessage, path string, fail Fail, out *string) error {
	if k := Kind(raw); k != "a string" {
		return fail(path, "must be a string, not %s", k)
	}
	if plain(raw) {
		*out = string(raw[1 : len(raw)-1])
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fail(path, "malformed string: %v", err)
	}
	return nil
}

// plain reports whether raw, a JSON string, decodes to its bytes between
// the quotes: no escapes, no control characters, valid UTF-8. Most strings
// of a spec (ids, keys, prefixes, endpoints) are, and a spec of a thousand
// members has thousands of them.
func plain(raw json.RawMessage) bool {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if stringStop[c] {
			return false
		}
	}
	return utf8.Valid(body)
}

// Number returns the literal text of the JSON number raw, the value of the
// field at path, for the caller to parse into the type and range it wants;
// any other JSON type, a string of digits too, is refused.
func Number(raw json.RawMessage, path string, fail Fail) (string, error) {
	if k := Kind(raw); k != "a number" {
		return "", fail(path, "must be a number, not %s", k)
	}
	return string(raw), nil
}

// Array returns the elements of the JSON array raw, the value of the field
// at path, undecoded; any other JSON type is refused.
func Array(raw json.RawMessage, path string, fail Fail) ([]json.RawMessage, error) {
	if k := Kind(raw); k != "an array" {
		return nil, fail(path, "must be an array, not %s", k)
	}
	if items, ok := wellFormedArray(raw); ok {
		return items, nil
	}
	return arraySlow(raw, path, fail)
}

// arraySlow is Array through encoding/json, for the errors.
func arraySlow(raw json.RawMessage, path string, fail Fail) ([]json.RawMessage, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fail(path, "malformed array: %v", err)
	}
	return items, nil
}

// Strings decodes the JSON array of strings raw, the value of the field at
// path, into out, naming the element that is not a string.
func Strings(raw json.RawMessage, path string, fail Fail, out *[]string) error {
	items, err := Array(raw, path, fail)
	if err != nil {
		return err
	}
	list := make([]string, len(items))
	for i, item := range items {
		if err := String(item, elementPath(path, i), fail, &list[i]); err != nil {
			return err
		}
	}
	*out = list
	return nil
}
