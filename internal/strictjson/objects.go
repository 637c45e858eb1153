package strictjson

import (
	"encoding/json"
	"strconv"
)

// FieldFunc reads the member key of an object, whose path is path, from
// its value val; Fields calls one for every member.
type FieldFunc func(key, path string, val json.RawMessage) error

// Text names an object member whose value is a JSON string, and where
// that string goes.
type Text struct {
	Key string
	To  *string
}

// Members returns a FieldFunc that reads the members texts names as
// strings (see String) and hands every other member to other. A table of
// names instead of a case per member: most members of znet's documents
// are plain strings.
func Members(fail Fail, texts []Text, other FieldFunc) FieldFunc {
	return func(key, path string, val json.RawMessage) error {
		for _, t := range texts {
			if t.Key == key {
				return String(val, path, fail, t.To)
			}
		}
		return other(key, path, val)
	}
}

// Objects decodes the JSON array raw, the value of the field at path,
// whose elements are objects: one T each, read member by member by the
// FieldFunc that fields returns for it, the element's path being
// "path[i]". Any other JSON type, and an element that is not an object,
// is refused.
func Objects[T any](raw json.RawMessage, path string, fail Fail, fields func(*T) FieldFunc) ([]T, error) {
	items, err := Array(raw, path, fail)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(items))
	for i, item := range items {
		if err := Fields(item, elementPath(path, i), fail, fields(&out[i])); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// elementPath is the path of element i of the array at path: "path[i]".
func elementPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
