package strictjson

import "encoding/json"

// A hand-written scanner for the common case, a well-formed document.
// encoding/json walks a value once per call (Decoder.Token, Decode,
// Unmarshal's validity check) and allocates for every token, which made a
// spec of a thousand members cost milliseconds. The scanner below only
// accepts input that is valid JSON; whenever it refuses, the callers take
// the encoding/json path, so that errors stay exactly as they were and the
// scanner never has to explain a fault.

// maxDepth is how deeply the scanner follows nesting before it gives up
// and leaves the document to encoding/json (whose own limit is 10,000).
const maxDepth = 1000

// skipSpace returns the offset of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// onlyValue returns data's single value without the whitespace around it;
// ok is false unless data is exactly one valid JSON value.
func onlyValue(data []byte) (json.RawMessage, bool) {
	start := skipSpace(data, 0)
	end, ok := skipValue(data, start, 0)
	if !ok || skipSpace(data, end) != len(data) {
		return nil, false
	}
	return data[start:end], true
}

// skipValue returns the offset just after the valid JSON value starting at
// data[i]; ok is false if there is none.
func skipValue(data []byte, i, depth int) (int, bool) {
	if i >= len(data) {
		return i, false
	}
	switch c := data[i]; {
	case c == '"':
		return skipString(data, i)
	case c == '{':
		return skipObject(data, i, depth+1)
	case c == '[':
		return skipArray(data, i, depth+1)
	case c == 't':
		return skipLiteral(data, i, "true")
	case c == 'f':
		return skipLiteral(data, i, "false")
	case c == 'n':
		return skipLiteral(data, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(data, i)
	}
	return i, false
}

func skipLiteral(data []byte, i int, lit string) (int, bool) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// skipString skips the string starting at the quote data[i]. Like
// encoding/json it lets invalid UTF-8 through (decoding replaces it).
func skipString(data []byte, i int) (int, bool) {
	for i++; i < len(data); i++ {
		c := data[i]
		if !stringStop[c] {
			continue
		}
		switch {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		default: // a backslash
			i++
			if i >= len(data) {
				return i, false
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(data)-i <= 4 || !isHex4(data[i+1:i+5]) {
					return i, false
				}
				i += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

// stringStop marks the bytes that end a run of a string's plain bytes:
// the quote, the backslash and control characters. One lookup a byte
// instead of three comparisons: strings are most of a spec, and the
// scanner reads each at least twice.
var stringStop = func() (stop [256]bool) {
	for c := range 0x20 {
		stop[c] = true
	}
	stop['"'], stop['\\'] = true, true
	return stop
}()

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// skipNumber skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func skipNumber(data []byte, i int) (int, bool) {
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		i = skipDigits(data, i)
	default:
		return i, false
	}
	if i < len(data) && data[i] == '.' {
		j := skipDigits(data, i+1)
		if j == i+1 {
			return i, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := skipDigits(data, i)
		if j == i {
			return i, false
		}
		i = j
	}
	return i, true
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

func skipArray(data []byte, i, depth int) (int, bool) {
	return eachElement(data, i, depth, nil)
}

func skipObject(data []byte, i, depth int) (int, bool) {
	return eachMember(data, i, depth, nil)
}

// eachElement walks the array whose '[' is data[i], calling fn (if not
// nil) with the bounds of every element; it returns the offset after ']'.
func eachElement(data []byte, i, depth int, fn func(start, end int)) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return i + 1, true
	}
	for {
		end, ok := skipValue(data, i, depth)
		if !ok {
			return end, false
		}
		if fn != nil {
			fn(i, end)
		}
		var done bool
		if i, done, ok = nextItem(data, end, ']'); !ok || done {
			return i, ok
		}
	}
}

// eachMember walks the object whose '{' is data[i], calling fn (if not
// nil) with the key (quotes included) and the value of every member; it
// returns the offset after '}'.
func eachMember(data []byte, i, depth int, fn func(key, val []byte)) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return i, false
		}
		kend, ok := skipString(data, i)
		if !ok {
			return kend, false
		}
		colon := skipSpace(data, kend)
		if colon >= len(data) || data[colon] != ':' {
			return colon, false
		}
		vstart := skipSpace(data, colon+1)
		vend, ok := skipValue(data, vstart, depth)
		if !ok {
			return vend, false
		}
		if fn != nil {
			fn(data[i:kend], data[vstart:vend])
		}
		var done bool
		if i, done, ok = nextItem(data, vend, '}'); !ok || done {
			return i, ok
		}
	}
}

// nextItem reads what follows an element or member ending at data[i]:
// closer ends the container (done, next is after it), a comma starts the
// next item (next is where); anything else is not JSON.
func nextItem(data []byte, i int, closer byte) (next int, done, ok bool) {
	i = skipSpace(data, i)
	if i >= len(data) {
		return i, false, false
	}
	switch data[i] {
	case closer:
		return i + 1, true, true
	case ',':
		return skipSpace(data, i+1), false, true
	}
	return i, false, false
}

// member is one key (quotes included, escapes not decoded) and value of an
// object the scanner found well-formed.
type member struct{ key, val json.RawMessage }

// wellFormedObject returns the members of raw, appended to buf, if it is
// exactly one valid JSON object (whitespace around it aside). buf is the
// caller's, usually an array on its stack: growing a slice from nothing
// was three allocations for every member of a spec.
func wellFormedObject(raw json.RawMessage, buf []member) ([]member, bool) {
	start := skipSpace(raw, 0)
	if start >= len(raw) || raw[start] != '{' {
		return nil, false
	}
	members := buf[:0]
	end, ok := eachMember(raw, start, 0, func(key, val []byte) {
		members = append(members, member{key, val})
	})
	if !ok || skipSpace(raw, end) != len(raw) {
		return nil, false
	}
	return members, true
}

// wellFormedArray returns the elements of raw if it is exactly one valid
// JSON array (whitespace around it aside); never nil then, as from
// json.Unmarshal.
func wellFormedArray(raw json.RawMessage) ([]json.RawMessage, bool) {
	start := skipSpace(raw, 0)
	if start >= len(raw) || raw[start] != '[' {
		return nil, false
	}
	items := []json.RawMessage{}
	end, ok := eachElement(raw, start, 0, func(s, e int) { items = append(items, raw[s:e]) })
	if !ok || skipSpace(raw, end) != len(raw) {
		return nil, false
	}
	return items, true
}

// walkMembers does for a well-formed object what Fields does: fn for every
// member in order, a repeated key refused.
func walkMembers(members []member, prefix string, fail Fail, fn FieldFunc) error {
	var seen keySet
	for _, m := range members {
		var key string
		if plain(m.key) {
			key = string(m.key[1 : len(m.key)-1])
		} else if err := json.Unmarshal(m.key, &key); err != nil {
			return fail(prefix, "malformed object: %v", err) // not reached: the scanner checked it
		}
		path := key
		if prefix != "" {
			path = prefix + "." + key
		}
		if !seen.add(key) {
			return fail(path, "field appears more than once")
		}
		if err := fn(key, path, m.val); err != nil {
			return err
		}
	}
	return nil
}

// keySet remembers the keys of one object: an array while there are few
// (most objects have a handful, and a spec has thousands of objects; an
// array, unlike a slice grown by append, costs no allocation), a map
// beyond.
type keySet struct {
	few  [16]string
	n    int // how many of few are used
	many map[string]bool
}

// add records key and reports whether it was new.
func (s *keySet) add(key string) bool {
	if s.many != nil {
		if s.many[key] {
			return false
		}
		s.many[key] = true
		return true
	}
	for _, k := range s.few[:s.n] {
		if k == key {
			return false
		}
	}
	if s.n < len(s.few) {
		s.few[s.n] = key
		s.n++
		return true
	}
	s.many = make(map[string]bool, 2*len(s.few))
	for _, k := range s.few {
		s.many[k] = true
	}
	s.many[key] = true
	return true
}
