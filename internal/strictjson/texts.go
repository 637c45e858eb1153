package strictjson

import "encoding/json"

// TextField names a member, of the objects TextObjects reads, whose value
// is a JSON string, and where in the element's T that string goes.
type TextField[T any] struct {
	Key string
	To  func(*T) *string
}

// TextObjects is Objects for an array of objects whose members are mostly
// strings, as a spec's nodes are: a member that texts names is read as
// String reads it, any other by the FieldFunc that other returns for its
// element. The FieldFuncs must write only their element.
//
// Results and errors are exactly those of Objects with the equivalent
// fields function (textFields), which it runs instead whenever its own
// way meets anything unusual: an error, an escape, a repeated key. Its own
// way scans the array once (Objects scans it, then each element again),
// and builds no path ("nodes[12].id") nor FieldFunc for a member that
// texts names: for a spec of a thousand members those were most of the
// time and allocations of the decode.
func TextObjects[T any](raw json.RawMessage, path string, fail Fail, texts []TextField[T], other func(*T) FieldFunc) ([]T, error) {
	if out, ok := textObjects(raw, path, texts, other); ok {
		return out, nil
	}
	return Objects(raw, path, fail, textFields(texts, other, fail))
}

// textFields is the fields function of Objects that TextObjects stands
// for: the reference it falls back on and must match.
func textFields[T any](texts []TextField[T], other func(*T) FieldFunc, fail Fail) func(*T) FieldFunc {
	return func(t *T) FieldFunc {
		rest := other(t)
		return func(key, path string, val json.RawMessage) error {
			for _, f := range texts {
				if f.Key == key {
					return String(val, path, fail, f.To(t))
				}
			}
			return rest(key, path, val)
		}
	}
}

// textObjects is TextObjects' own way: ok is false when raw is not a
// well-formed array of well-formed objects (depth counted as Array and
// Fields count it) that its members read without an error.
func textObjects[T any](raw json.RawMessage, path string, texts []TextField[T], other func(*T) FieldFunc) ([]T, bool) {
	i := skipSpace(raw, 0)
	if len(texts) > 64 || i >= len(raw) || raw[i] != '[' {
		return nil, false
	}
	out := []T{} // an empty array is an empty list, as from Objects
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return out, skipSpace(raw, i+1) == len(raw)
	}
	for {
		if i >= len(raw) || raw[i] != '{' {
			return nil, false
		}
		var buf [8]member
		members := buf[:0]
		end, ok := eachMember(raw, i, 1, func(key, val []byte) { members = append(members, member{key, val}) })
		if !ok {
			return nil, false
		}
		var zero T
		out = append(out, zero)
		if !textMembers(members, path, len(out)-1, texts, other, &out[len(out)-1]) {
			return nil, false
		}
		var done bool
		if i, done, ok = nextItem(raw, end, ']'); !ok {
			return nil, false
		} else if done {
			return out, skipSpace(raw, i) == len(raw)
		}
	}
}

// textMembers reads the members of element i of the array at path into t;
// false if one is unusual (see TextObjects) or other refuses it.
func textMembers[T any](members []member, path string, i int, texts []TextField[T], other func(*T) FieldFunc, t *T) bool {
	var seenTexts uint64 // bit k: texts[k] was read
	var seenOthers keySet
	var rest FieldFunc
	for _, m := range members {
		if !plain(m.key) {
			return false
		}
		name := m.key[1 : len(m.key)-1]
		k := textIndex(texts, name)
		if k < 0 {
			key := string(name)
			if !seenOthers.add(key) {
				return false
			}
			if rest == nil {
				rest = other(t)
			}
			if rest(key, elementPath(path, i)+"."+key, m.val) != nil {
				return false
			}
			continue
		}
		if seenTexts&(1<<k) != 0 || !plain(m.val) {
			return false
		}
		seenTexts |= 1 << k
		*texts[k].To(t) = string(m.val[1 : len(m.val)-1])
	}
	return true
}

// textIndex returns the index of the first of texts whose key is name, or
// -1 for none.
func textIndex[T any](texts []TextField[T], name []byte) int {
	for k, f := range texts {
		if f.Key == string(name) { // compared without a copy
			return k
		}
	}
	return -1
}
