package dsr

import (
	"fmt"
	"slices"
	"time"
)

// Due is what the deadline checks read of a request: they filter in the
// query, so a run with nothing to do reads nothing.
type Due struct {
	ID    string    `bson:"_id"`
	DueAt time.Time `bson:"due_at"`
}

// The words of a request's deadline. Each is defined here once; the store's
// queries (the overdue list, the deadline checks, the counts) select the
// same requests.

// PastDue reports whether r's clock has run past its due date at now: the
// clock is running (not paused: a paused clock is not late) and DueAt is
// before now. It says nothing of r's status: see [Request.Overdue].
func (r *Request) PastDue(now time.Time) bool {
	return r.PausedAt == nil && r.DueAt.Before(now)
}

// Overdue reports whether r is overdue at now: open ([Status.Open]: still
// to be answered, a duplicate included) and past due ([Request.PastDue]:
// its clock running and its due date before now).
func (r *Request) Overdue(now time.Time) bool {
	return r.Status.Open() && r.PastDue(now)
}

// Responded reports whether r was answered: completed or denied, its
// closing recorded. A cancelled or expired request was closed without an
// answer.
func (r *Request) Responded() bool {
	return (r.Status == StatusCompleted || r.Status == StatusDenied) && r.ClosedAt != nil
}

// OnTime reports whether r was closed no later than its due date (as
// extended, and moved by its pauses); false while it is open.
func (r *Request) OnTime() bool {
	return r.ClosedAt != nil && !r.ClosedAt.After(r.DueAt)
}

// DaysToRespond is the time from r's receipt to its closing, in days, with
// their fraction (36 hours is 1.5; int() of it counts whole days); 0 while
// r is open.
func (r *Request) DaysToRespond() float64 {
	if r.ClosedAt == nil {
		return 0
	}
	return days(r.ClosedAt.Sub(r.ReceivedAt))
}

// days is a duration in days, with their fraction.
func days(d time.Duration) float64 { return d.Hours() / 24 }

// Extend gives r, at now, the one extension of its deadline its rule
// allows ([RuleFor], [Extended]), with a reason: DueAt moves, Extension
// records it (From the due date before), the person is to be told
// (NoticeExtended becomes pending) and the reminders start over for the
// new due date (Reminded is emptied). ErrNoExtension when r was extended
// before, its rule allows none, or it is past its due date (the law wants
// the extension decided, and the person told, within the first period);
// ErrConflict when r is closed. r is changed only on success.
func (r *Request) Extend(actor, reason string, now time.Time) error {
	if r.Extension != nil {
		return fmt.Errorf("extended on %s already: %w", r.Extension.At.Format(time.DateOnly), ErrNoExtension)
	}
	to, ok := Extended(r.Regulation, r.Type, r.DueAt)
	if !ok {
		return fmt.Errorf("%s allows no extension for %s: %w", r.Regulation, r.Type, ErrNoExtension)
	}
	if r.Status.Closed() {
		return r.clockStopped()
	}
	if now.After(r.DueAt) {
		return fmt.Errorf("past its due date: %w", ErrNoExtension)
	}
	r.Extension = &Extension{By: actor, At: now, Reason: reason, From: r.DueAt}
	r.DueAt = to
	for _, n := range r.ExtensionNotices() {
		if !slices.Contains(r.PendingNotices, n) {
			r.PendingNotices = append(slices.Clip(r.PendingNotices), n)
		}
	}
	r.Reminded = nil
	return nil
}

// ExtensionNotices are the notices an extension makes pending: the
// person's, and the protocol party's when it is owed every change of the
// request (its expected date moves).
func (r *Request) ExtensionNotices() []string {
	if r.StatusCallbacks {
		return []string{NoticeExtended, NoticeProtocolStatus}
	}
	return []string{NoticeExtended}
}
