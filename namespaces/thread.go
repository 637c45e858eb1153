package namespaces

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn on a locked OS thread that is switched into ns, then switches
// the thread back. If the thread cannot be switched back it stays locked and
// the runtime retires it when its goroutine ends, so no other goroutine ever
// runs in ns by accident.
//
// fn runs on a goroutine of its own, so the caller's thread and its
// LockOSThread state are never touched. A panic in fn is raised again in the
// caller, and runtime.Goexit in fn (t.FailNow) exits the caller too, each
// after the thread was switched back. fn must not start goroutines that need
// to run in ns: they run on other threads, in whatever namespace those
// threads are in.
func Do(ns netns.NsHandle, fn func() error) error {
	return onFreshThread(func() error {
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("entering namespace: %w", err)
		}
		return fn()
	})
}

// outcome is how fn ended on the fresh thread.
type outcome struct {
	err        error // fn's result
	restoreErr error // switching the thread back failed
	panicked   bool
	panicValue any
	goexit     bool
}

// onFreshThread runs fn on a new goroutine locked to its OS thread, which
// fn may move into another network namespace; afterwards the thread is put
// back into the namespace it started in and unlocked, or, if that fails, left
// locked so the runtime retires it. Panics and Goexit in fn carry over to the
// caller.
func onFreshThread(fn func() error) error {
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		returned := false
		// Runs last: after the namespace was restored, whatever fn did.
		defer func() {
			if !returned {
				if v := recover(); v != nil {
					o.panicked, o.panicValue = true, v
				} else {
					o.goexit = true
				}
			}
			done <- o
		}()
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			o.err = fmt.Errorf("getting current namespace: %w", err)
			returned = true
			return
		}
		defer func() { _ = orig.Close() }()
		defer func() {
			if err := netns.Set(orig); err != nil {
				// Stay locked: the thread dies with this goroutine.
				o.restoreErr = fmt.Errorf("restoring namespace: %w", err)
				return
			}
			runtime.UnlockOSThread()
		}()
		o.err = fn()
		returned = true
	}()
	o := <-done
	switch {
	case o.panicked:
		panic(o.panicValue)
	case o.goexit:
		runtime.Goexit()
	}
	return errors.Join(o.err, o.restoreErr)
}
