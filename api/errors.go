package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/znet/znet/spec"
)

// Kinds of error, matched with errors.Is. The daemon returns bad input as
// a *spec.FieldError (see Invalid) and the others wrapped in *Error; the
// client rebuilds all of them as *Error from the HTTP status.
var (
	// ErrInvalid is spec.ErrInvalid: a bad field of a request and one of
	// a spec are the same kind of error, of the same type.
	ErrInvalid  = spec.ErrInvalid         // 400
	ErrNotFound = errors.New("not found") // 404
	ErrConflict = errors.New("conflict")  // 409
)

// Error is an error the API reports: a kind, the field it is about (if any)
// and a message for people.
type Error struct {
	Kind    error  `json:"-"`
	Message string `json:"error"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Unwrap returns the kind, so errors.Is(err, ErrConflict) works.
func (e *Error) Unwrap() error { return e.Kind }

// Invalid returns a *spec.FieldError about field, the one type of a bad
// field, in a request as in a spec; it matches ErrInvalid.
func Invalid(field, format string, args ...any) error {
	return spec.Invalid(field, format, args...)
}

// NotFound returns an ErrNotFound *Error about field.
func NotFound(field, format string, args ...any) error {
	return &Error{Kind: ErrNotFound, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Conflict returns an ErrConflict *Error about field.
func Conflict(field, format string, args ...any) error {
	return &Error{Kind: ErrConflict, Field: field, Message: fmt.Sprintf(format, args...)}
}

// CheckName returns an ErrInvalid error about field unless name is a
// valid name (spec.ValidName). The Service checks every name it is given
// with it, the HTTP server none: one check, one message.
func CheckName(field, name string) error {
	if err := spec.ValidName(name); err != nil {
		return Invalid(field, "%q is not a valid name: %v", name, err)
	}
	return nil
}

// StatusOf maps err to an HTTP status and the JSON body to send.
func StatusOf(err error) (int, *Error) {
	var fe *spec.FieldError
	if errors.As(err, &fe) {
		body := &Error{Kind: ErrInvalid, Field: fe.Field, Message: fe.Reason}
		if err != error(fe) {
			// Keep the context the daemon wrapped around it.
			body.Message = err.Error()
		}
		return http.StatusBadRequest, body
	}
	var ae *Error
	if errors.As(err, &ae) {
		body := &Error{Kind: ae.Kind, Field: ae.Field, Message: ae.Message}
		if err != error(ae) {
			// Keep the context the daemon wrapped around the *Error.
			body.Message = err.Error()
		}
		return statusOfKind(ae.Kind), body
	}
	switch {
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, &Error{Kind: ErrInvalid, Message: err.Error()}
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, &Error{Kind: ErrNotFound, Message: err.Error()}
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, &Error{Kind: ErrConflict, Message: err.Error()}
	}
	return http.StatusInternalServerError, &Error{Message: err.Error()}
}

func statusOfKind(kind error) int {
	switch kind {
	case ErrInvalid:
		return http.StatusBadRequest
	case ErrNotFound:
		return http.StatusNotFound
	case ErrConflict:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// KindOf maps an HTTP status back to an error kind (nil for others).
func KindOf(status int) error {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return ErrInvalid
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	}
	return nil
}
