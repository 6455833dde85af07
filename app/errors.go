package app

import (
	"errors"
)

// ErrFourEyes: the agent filed the request (or the request it appeals),
// and requests of its type are approved by a second agent.
var ErrFourEyes = errors.New("four eyes: another agent must approve")

// ErrExportNotAvailable: the request has no export (not an access request),
// or not yet (not completed).
var ErrExportNotAvailable = errors.New("export not available")

// Refusal is an action refused for the request's state, with the words to
// tell the caller (Detail); it wraps the sentinel that says which refusal
// it is (dsr.ErrConflict, dsr.ErrNoExtension, ErrExportNotAvailable, ...).
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
