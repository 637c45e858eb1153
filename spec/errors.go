package spec

import (
	"errors"
	"fmt"
)

// MaxSize is the largest spec document, in bytes, that Decode accepts.
const MaxSize = 1 << 20

// ErrInvalid is matched (via errors.Is) by every *FieldError: those that
// Decode and Validate return, and those of API requests (api.Invalid, and
// api.ErrInvalid is ErrInvalid).
var ErrInvalid = errors.New("invalid spec")

// FieldError says which field of a spec (or of an API request, a deployment
// file, a zos workload) is wrong and why: the one type of a bad field. Field
// is a JSON path such as "nodes[1].subnet", or "" for the document as a
// whole.
type FieldError struct {
	Field  string
	Reason string
}

// Error returns "field: reason", or just the reason when Field is empty.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Is reports whether target is ErrInvalid, so that errors.Is(err, ErrInvalid)
// holds for every *FieldError.
func (e *FieldError) Is(target error) bool {
	return target == ErrInvalid
}

// Invalid returns a *FieldError about field: the one constructor of a bad
// field, which deploy, zos and api (api.Invalid) use too. It is a
// strictjson.Fail.
func Invalid(field, format string, args ...any) error { return fieldErr(field, format, args...) }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
