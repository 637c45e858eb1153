package apitest

import (
	"fmt"
	"slices"
	"sync"
)

// Recorder notes the calls a fake service gets, one line each, and
// returns the errors set for its methods. Fake and deploytest's Node embed
// it. It is safe for concurrent use; the zero value is ready.
type Recorder struct {
	mu    sync.Mutex
	calls []string
	errs  map[string]error
}

// SetErr makes the method named method (e.g. "Apply") return err from now
// on; a nil err clears it.
func (r *Recorder) SetErr(method string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.errs == nil {
		r.errs = map[string]error{}
	}
	r.errs[method] = err
}

// Calls returns the calls so far, one line each, like "Detach(shop, web)".
func (r *Recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Record notes a call of method with args and returns the error set for
// method (nil for none).
func (r *Recorder) Record(method string, args ...any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := method + "("
	for i, a := range args {
		if i > 0 {
			line += ", "
		}
		line += fmt.Sprint(a)
	}
	r.calls = append(r.calls, line+")")
	return r.errs[method]
}
