package runtime

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"runtime/debug"
)

// Weights are read straight from the file's memory mapping. If the file is
// truncated or rewritten in place while a model uses it (cp over it, say),
// touching a page past the new end raises SIGBUS, which would kill the
// process with a goroutine dump. The goroutines that read weights run with
// debug.SetPanicOnFault, which turns such a fault into a panic; it is
// recovered where the goroutine's work ends and returned as ErrFileChanged.
// (A converter never does this: it renames a new file into place, and the
// mapping keeps the old one.)

// ErrFileChanged is returned when the model's file was truncated or
// rewritten while it was mapped.
var ErrFileChanged = errors.New("runtime: the model file was truncated or rewritten while in use")

// faultError wraps the fault address of a recovered memory fault.
type faultError struct{ err error }

func (f faultError) Error() string { return f.err.Error() }
func (f faultError) Unwrap() error { return ErrFileChanged }

// asFault returns the error for a recovered value that is a memory fault,
// or nil for any other panic value (which must be re-raised).
func asFault(r any) error {
	re, ok := r.(goruntime.Error)
	if !ok {
		return nil
	}
	if _, ok := re.(interface{ Addr() uintptr }); !ok {
		return nil
	}
	return faultError{fmt.Errorf("%w (%v)", ErrFileChanged, re)}
}

// guardFaults runs f with faults turned into an error.
func guardFaults(f func()) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			if fe := asFault(r); fe != nil {
				err = fe
				return
			}
			if fp, ok := r.(faultPanic); ok {
				err = fp.err
				return
			}
			panic(r)
		}
	}()
	f()
	return nil
}

// faultPanic carries a helper's fault to the goroutine that dispatched the
// task, whose guardFaults returns it.
type faultPanic struct{ err error }
