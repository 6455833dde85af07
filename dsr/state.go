package dsr

import (
	"fmt"
	"slices"
)

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
	return slices.Contains(Statuses, s)
}

// Closed reports whether the request's life is over.
func (s Status) Closed() bool {
	return s.Valid() && len(transitions[s]) == 0
}

// Open reports whether a request in status s is open: still to be
// answered. Every known status is open or closed ([Status.Closed]); a
// duplicate is open (it awaits an agent). This is the one meaning of
// "open"; [OverdueStatuses] lists these statuses.
func (s Status) Open() bool {
	return s.Valid() && !s.Closed()
}

// The status sets, each a subset of [Statuses] (a test checks that the
// open and closed ones agree with [Status.Open] and [Status.Closed]).
var (
	// OverdueStatuses are the open statuses ([Status.Open]): those in
	// which a request past due is overdue ([Request.Overdue]). The store
	// selects open requests with them.
	OverdueStatuses = []Status{StatusReceived, StatusVerifying, StatusVerified, StatusAwaitingApproval, StatusInProgress, StatusNeedsAttention, StatusDuplicate}
	// ActiveStatuses are the open statuses of a request being worked on:
	// every open status but duplicate (parked until an agent unlinks it).
	// A request a new one may be merged into is active, and only an active
	// request's deadline may be extended.
	ActiveStatuses = []Status{StatusReceived, StatusVerifying, StatusVerified, StatusAwaitingApproval, StatusInProgress, StatusNeedsAttention}
	// VerifiedOpenStatuses are the active statuses of a request whose
	// identity is established.
	VerifiedOpenStatuses = []Status{StatusVerified, StatusAwaitingApproval, StatusInProgress, StatusNeedsAttention}
	// DuplicateCandidates are the statuses a new request is a duplicate
	// of: active ones whose identity is established (an unverified
	// request may never be verified, and would hold its duplicates for
	// ever).
	DuplicateCandidates = VerifiedOpenStatuses
	// ClosedStatuses are the statuses of a request whose life is over
	// ([Status.Closed]).
	ClosedStatuses = []Status{StatusCompleted, StatusDenied, StatusCancelled, StatusExpired}
	// PausableStatuses are the statuses in which a clock may stop
	// ([Request.PauseClock]): before the identity is confirmed, the only
	// wait the law allows for. Verification (on the portal) resumes it.
	PausableStatuses = []Status{StatusReceived, StatusVerifying}
)

// CanMove reports whether the state machine allows from -> to.
func CanMove(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// CheckMove returns an error wrapping ErrInvalidTransition when the state
// machine does not allow from -> to ([CanMove]), nil when it does. A store
// checks every transition with it before writing.
func CheckMove(from, to Status) error {
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

// Change is what a transition sets besides the status.
type Change struct {
	Actor  string
	Reason string
	// Identities, when set, replaces the request's identities (and their
	// blind index, Hashes).
	Identities []Identity
	Hashes     []string
	// ProvenHashes, when set, replaces the blind index of the proven
	// identities (see Request.ProvenHashes).
	ProvenHashes []string
	// ResolveBoundReached, when not 0, records that identity resolution
	// stopped at this many rounds while still finding identities.
	ResolveBoundReached int
	// Notices become due with the change (added to PendingNotices).
	Notices []string
	// Purge removes the subject's identities (and an agent's details),
	// keeping the blind index and the history.
	Purge bool
	// StatusTokens, when set, replaces the hashes of the tokens that may
	// follow the request.
	StatusTokens []string
	// ApprovedBy records who approved the request.
	ApprovedBy string
	// JobCounts, when set, replaces the request's counts of open and failed
	// jobs with counts taken from the jobs themselves (a settle that read
	// them), so counts that drifted (a worker died between a job's end and
	// its count) are right again before an agent's retry counts from them.
	JobCounts *JobCounts
	// Exceptions are added to the request's exceptions.
	Exceptions []Exception
	// Unlink ends the request's link to the one it duplicated.
	Unlink bool
	// DenialBasis records why a request moving to denied was denied.
	DenialBasis DenialBasis
	// ResetFanout forgets the fan-out's failures and the pre-fan-out
	// hook's hold (an agent's retry).
	ResetFanout bool
	// OutcomeHook marks the request as owing the post-processing hook its
	// outcome (Request.OutcomeHook), and, when the move is to a status
	// where it is due (OutcomeDue), makes NoticeHookOutcome pending.
	OutcomeHook bool
}
