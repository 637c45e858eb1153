// Package strictjson holds the pieces of strict JSON decoding that the api,
// spec and deploy packages share: naming a value's JSON type, walking the
// members of an object while refusing repeated keys, and reading a string
// or a number without the lenient conversions of encoding/json.
//
// Every error it returns is made by the caller's Fail function, so each
// package keeps its own error type and the path of the field at fault.
// What a whole document may look like (one object, nothing after it, size
// limits) and the messages for broken documents stay with the callers.
package strictjson
