// Package strictjson holds the strict JSON decoding that the api, spec,
// deploy and zos packages share: taking the one object out of a document
// (nothing after it, a size limit), naming a value's JSON type, walking the
// members of an object while refusing repeated keys, and reading a string
// or a number without the lenient conversions of encoding/json.
//
// Every error it returns is made by the caller's Fail function, so each
// error names the path of the field at fault (a *spec.FieldError, made by
// spec's, deploy's and zos's fail or by api.Invalid for requests). It only
// parses: what values mean and which are allowed stays with the callers.
package strictjson
