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
// element (once per element). Results and errors are exactly those of
// Objects with the equivalent fields function (textFields); only the cost
// differs. Objects builds every member's path ("nodes[12].id") and a
// FieldFunc per element before anything fails; TextObjects builds a path
// only for an error or for other. Those paths and closures were about a
// third of the allocations of decoding a spec of a thousand members.
func TextObjects[T any](raw json.RawMessage, path string, fail Fail, texts []TextField[T], other func(*T) FieldFunc) ([]T, error) {
	if len(texts) > 64 { // more than seenTexts holds: no such caller
		return Objects(raw, path, fail, textFields(texts, other, fail))
	}
	items, err := Array(raw, path, fail)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(items))
	for i, item := range items {
		if err := textObject(item, path, i, fail, texts, other, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// textFields is the fields function of Objects that TextObjects stands
// for: the reference it must match.
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

// textObject reads item, element i of the array at path, into t.
func textObject[T any](item json.RawMessage, path string, i int, fail Fail, texts []TextField[T], other func(*T) FieldFunc, t *T) error {
	var buf [8]member
	members, ok := wellFormedObject(item, buf[:])
	if !ok { // not an object, or deeper than the scanner goes: Fields' errors
		return Fields(item, elementPath(path, i), fail, textFields(texts, other, fail)(t))
	}
	objPath := func() string { return elementPath(path, i) }
	memberPath := func(key string) string { return objPath() + "." + key }
	var seenTexts uint64 // bit k: texts[k] was read
	var seenOthers keySet
	var rest FieldFunc
	for _, m := range members {
		name, err := keyText(m.key, objPath, fail)
		if err != nil {
			return err
		}
		k := textIndex(texts, name)
		if k < 0 {
			key := string(name)
			if !seenOthers.add(key) {
				return fail(memberPath(key), "field appears more than once")
			}
			if rest == nil {
				rest = other(t)
			}
			if err := rest(key, memberPath(key), m.val); err != nil {
				return err
			}
			continue
		}
		if seenTexts&(1<<k) != 0 {
			return fail(memberPath(texts[k].Key), "field appears more than once")
		}
		seenTexts |= 1 << k
		if plain(m.val) {
			*texts[k].To(t) = string(m.val[1 : len(m.val)-1])
		} else if err := String(m.val, memberPath(texts[k].Key), fail, texts[k].To(t)); err != nil {
			return err
		}
	}
	return nil
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
