package dsr

import "errors"

// Refusals: what a rule forbids, beyond the store's sentinels (errors.go).
// The HTTP toolkit maps each to its status in one place.
var (
	// ErrFourEyes means the caller may not approve this request: they filed
	// it (or what it appeals), and the approval policy wants another agent.
	ErrFourEyes = errors.New("another agent must approve")
	// ErrNoExport means the request has no export to give: it is not an
	// access request, or not completed yet.
	ErrNoExport = errors.New("export not available")
	// ErrVerificationFailed means a verification code or link was wrong or
	// had expired. See VerificationFailure.
	ErrVerificationFailed = errors.New("verification failed")
	// ErrLinkInvalid means a signed download link is forged, altered or
	// expired.
	ErrLinkInvalid = errors.New("download link not valid")
)

// Refusal is a sentinel (Err) with the words its caller is told in this
// case (Detail), e.g. ErrConflict with "This request is not waiting for
// verification.". errors.Is sees Err through it.
type Refusal struct {
	Err    error
	Detail string
}

// Refuse returns err with detail for its caller.
func Refuse(err error, detail string) error {
	return &Refusal{Err: err, Detail: detail}
}

func (r *Refusal) Error() string { return r.Err.Error() + ": " + r.Detail }

func (r *Refusal) Unwrap() error { return r.Err }

// VerificationFailure is ErrVerificationFailed for one attempt: how many
// tries are left (none: the request has been denied) and why, in words for
// the person.
type VerificationFailure struct {
	TriesLeft int
	Detail    string
}

func (v *VerificationFailure) Error() string { return ErrVerificationFailed.Error() + ": " + v.Detail }

func (v *VerificationFailure) Unwrap() error { return ErrVerificationFailed }
