package app

import "errors"

// portalStore is what the portal's filing and verification need of the
// store, beyond requestStore (the portal's files declare it).
type portalStore interface{}

// The portal's refusals, beyond the domain's sentinels.
var (
	// ErrVerificationFailed: a verification code or link was wrong or had
	// expired. See VerificationFailure.
	ErrVerificationFailed = errors.New("verification failed")
	// ErrLinkInvalid: a signed download link is forged, altered or expired.
	ErrLinkInvalid = errors.New("download link not valid")
)

// VerificationFailure is ErrVerificationFailed for one attempt: how many
// tries are left (none: the request has been denied) and why, in words for
// the person.
type VerificationFailure struct {
	TriesLeft int
	Detail    string
}

func (v *VerificationFailure) Error() string {
	return ErrVerificationFailed.Error() + ": " + v.Detail
}

func (v *VerificationFailure) Unwrap() error { return ErrVerificationFailed }
