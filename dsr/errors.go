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
	// ErrStorageFull means the store could not write because its disk is
	// full. Nothing was written; the same call may succeed once space is
	// freed. See StorageError.
	ErrStorageFull = errors.New("storage full")
	// ErrStoreUnavailable means the store could not serve the call now:
	// another process held the embedded store past the wait, or its file
	// was removed or replaced under the running process (nothing was
	// written); MongoDB had no primary within the server selection
	// timeout, or the connection failed (a write cut off mid-way may have
	// been applied). The same call may succeed later (or after a
	// restart); a filing repeated with its Idempotency-Key is never filed
	// twice.
	ErrStoreUnavailable = errors.New("store unavailable")
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

// ErrIdempotencyMismatch means a key was reused for a different request.
var ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")

// Verification errors.
var (
	// ErrLocked means the request's verification tries are used up.
	ErrLocked = errors.New("verification locked: too many tries")
	// ErrNoCode means no code has been sent for the request yet.
	ErrNoCode = errors.New("no verification code sent yet")
)

// ErrNotPausable means the request's rule does not let its clock stop.
var ErrNotPausable = errors.New("the clock of this request cannot be paused")

// ErrNotAppealable means the request cannot be appealed: not denied, its
// regulation grants no appeal, it was appealed already, or it is itself an
// appeal.
var ErrNotAppealable = errors.New("no appeal possible")

// ErrProofRequired means the appeal needs a new proof of identity: the
// request it appeals was denied as unverifiable, or never verified.
var ErrProofRequired = errors.New("a new proof of identity is required")

// ErrExportOrder means an exporter wrote a collection's records in more than
// one run; exports must write each collection's records together.
var ErrExportOrder = errors.New("export: a collection's records were not written together")

// ErrNoExtension means the regulation allows no extension of this request's
// deadline, or it was extended already.
var ErrNoExtension = errors.New("no extension allowed")

// Refusal is a change refused for the request's state or by a rule, with
// the words to tell the caller (Detail); it wraps the sentinel that says
// which refusal it is (ErrConflict, ErrNoExtension, ...), so errors.Is sees
// that through it.
type Refusal struct {
	Err    error
	Detail string
}

func (r *Refusal) Error() string { return r.Err.Error() + ": " + r.Detail }

func (r *Refusal) Unwrap() error { return r.Err }

// Refuse returns err with detail, the words its caller is told.
func Refuse(err error, detail string) error {
	return &Refusal{Err: err, Detail: detail}
}

// Answers to waiting jobs (the store's AnswerJob). Both wrap ErrConflict, so
// a surface that knows neither answers them as a conflict.
var (
	// ErrJobNotWaiting means the job does not wait on the handle the
	// answer names: it never did, it finished, it runs now, or it waits on
	// other work.
	ErrJobNotWaiting = fmt.Errorf("%w: the job is not waiting on that handle", ErrConflict)
	// ErrAlreadyAnswered means the job's wait was answered already and the
	// answer not yet taken up by a run.
	ErrAlreadyAnswered = fmt.Errorf("%w: the job was answered already", ErrConflict)
	// ErrUnreadable means a request's or job's personal data is sealed
	// (store/sealedstore) and does not open: altered behind the service,
	// or its master key missing. Retrying cannot help; an agent must look.
	ErrUnreadable = errors.New("its sealed personal data does not open")
	// ErrAnswerSize means an answer is empty or larger than MaxAnswer.
	ErrAnswerSize = fmt.Errorf("an answer must hold 1 to %d bytes", MaxAnswer)
)

// MaxAnswer bounds a job's Answer: 8 MiB. A store keeps the answer in the
// job's document (MongoDB's limit is 16 MiB), so the surfaces that take
// answers in bound their bodies below it; a manual task's upload, which
// becomes an answer, is limited below it too.
const MaxAnswer = 8 << 20

// MaxStoredAnswer bounds an answer as a store takes it: MaxAnswer and room
// for the sealing that store/sealedstore adds (nonce, tag, version).
const MaxStoredAnswer = MaxAnswer + 64
