package dsr

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Sentinel errors that callers branch on. The store turns driver errors into
// these; handlers map them to HTTP statuses in one place.
var (
	// ErrNotFound means no record has the given id.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the record exists but is no longer in the state the
	// change expected: another actor moved it first.
	ErrConflict = errors.New("conflict")
	// ErrInvalidTransition means the state machine forbids the change.
	ErrInvalidTransition = errors.New("invalid status transition")
	// ErrStorageFull means the store could not write because its disk is
	// full. Nothing was written; the same call may succeed once space is
	// freed. See StorageError.
	ErrStorageFull = errors.New("storage full")
)

// mongoOutOfDiskSpace is MongoDB's OutOfDiskSpace error code.
const mongoOutOfDiskSpace = 14031

// fullMessages are what a full disk reads like in a store's error message:
// SQLite's SQLITE_FULL (through FerretDB) and the operating system's
// ENOSPC, as the server passes them on.
var fullMessages = []string{"database or disk is full", "no space left on device"}

// StorageError returns err marked with ErrStorageFull when it says the
// store's disk is full (MongoDB's OutOfDiskSpace, SQLite's SQLITE_FULL
// through FerretDB, ENOSPC), else err unchanged: the one place where a full
// disk is recognised. nil stays nil.
func StorageError(err error) error {
	if err == nil || errors.Is(err, ErrStorageFull) {
		return err
	}
	full := errors.Is(err, syscall.ENOSPC)
	var se mongo.ServerError
	if !full && errors.As(err, &se) {
		full = se.HasErrorCode(mongoOutOfDiskSpace)
		for _, m := range fullMessages {
			full = full || se.HasErrorMessage(m)
		}
	}
	if !full {
		return err
	}
	return fmt.Errorf("%w: %w", ErrStorageFull, err)
}

// FieldError is one problem with one input field.
type FieldError struct {
	// Field is a dotted path to the field, e.g. "subject.email".
	Field   string
	Message string
}

// ValidationError lists every problem found in an input. It never quotes the
// input's values, which may identify a person.
type ValidationError struct {
	Fields []FieldError
}

// Add records a problem with a field.
func (v *ValidationError) Add(field, format string, args ...any) {
	v.Fields = append(v.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns v when it holds a problem, else nil.
func (v *ValidationError) Err() error {
	if len(v.Fields) == 0 {
		return nil
	}
	return v
}

func (v *ValidationError) Error() string {
	parts := make([]string, len(v.Fields))
	for i, f := range v.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}
