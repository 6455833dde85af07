package dsr

import (
	"errors"
	"fmt"
	"strings"
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
)

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
