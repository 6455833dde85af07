package dsr

import "fmt"

// Status is where a request is in its life:
//
//	received -> verifying -> verified -> (awaiting_approval) -> in_progress -> completed
//
// with side exits denied, cancelled, expired (never verified) and
// needs_attention (a job, or the fan-out, failed past its retries; an
// agent's retry sends a request whose fan-out failed back to verified).
type Status string

// The request statuses.
const (
	StatusReceived         Status = "received"
	StatusVerifying        Status = "verifying"
	StatusVerified         Status = "verified"
	StatusAwaitingApproval Status = "awaiting_approval"
	StatusInProgress       Status = "in_progress"
	StatusCompleted        Status = "completed"
	StatusNeedsAttention   Status = "needs_attention"
	StatusDenied           Status = "denied"
	StatusCancelled        Status = "cancelled"
	StatusExpired          Status = "expired"
	// StatusDuplicate marks a request linked to an open identical one
	// (DuplicateOf) instead of being run twice; an agent may unlink it.
	StatusDuplicate Status = "duplicate"
)

// Statuses lists every status in life order.
var Statuses = []Status{
	StatusReceived, StatusVerifying, StatusVerified, StatusAwaitingApproval,
	StatusInProgress, StatusCompleted, StatusNeedsAttention,
	StatusDenied, StatusCancelled, StatusExpired, StatusDuplicate,
}

// transitions is the state machine: for each status, where it may go next.
var transitions = map[Status][]Status{
	StatusReceived:         {StatusVerifying, StatusVerified, StatusDenied, StatusCancelled},
	StatusVerifying:        {StatusVerified, StatusExpired, StatusDenied, StatusCancelled},
	StatusVerified:         {StatusAwaitingApproval, StatusInProgress, StatusNeedsAttention, StatusDenied, StatusCancelled},
	StatusAwaitingApproval: {StatusVerified, StatusInProgress, StatusDenied, StatusCancelled},
	StatusInProgress:       {StatusCompleted, StatusNeedsAttention},
	StatusNeedsAttention:   {StatusInProgress, StatusVerified, StatusCompleted},
	StatusDuplicate:        {StatusVerified, StatusVerifying, StatusCancelled},
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, k := range Statuses {
		if s == k {
			return true
		}
	}
	return false
}

// Closed reports whether the request's life is over.
func (s Status) Closed() bool {
	return s.Valid() && len(transitions[s]) == 0
}

// CanMove reports whether the state machine allows from -> to.
func CanMove(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// checkMove returns an error wrapping ErrInvalidTransition when from -> to is
// not allowed.
func checkMove(from, to Status) error {
	if !CanMove(from, to) {
		return fmt.Errorf("%w: %s -> %s", ErrInvalidTransition, from, to)
	}
	return nil
}

// DenialBasis is why a request was denied, in the categories of the CCPA's
// yearly disclosure (11 CCR 7102(a)(1)(D)).
type DenialBasis string

// The denial bases.
const (
	// DeniedUnverifiable: the requester's identity could not be verified.
	DeniedUnverifiable DenialBasis = "unverifiable"
	// DeniedNotConsumer: the request was not made by the person, or by
	// someone they authorised.
	DeniedNotConsumer DenialBasis = "not_consumer"
	// DeniedExempt: it calls for information exempt from disclosure or
	// deletion (a legal exception).
	DeniedExempt DenialBasis = "exempt"
	// DeniedOther: any other ground, given in the reason.
	DeniedOther DenialBasis = "other"
)

// DenialBases lists the denial bases, in the order of the disclosure.
var DenialBases = []DenialBasis{DeniedUnverifiable, DeniedNotConsumer, DeniedExempt, DeniedOther}
