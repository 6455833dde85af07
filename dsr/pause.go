package dsr

import (
	"fmt"
	"slices"
	"time"
)

// PauseClock stops r's clock at now, where its rule allows it (GDPR: while
// the business waits for information it asked for to confirm identity):
// PausedAt is set and the pause recorded in Pauses. ErrConflict when r is
// closed; ErrNotPausable when the rule does not allow it; ErrConflict when
// the clock is paused already or r is not in one of [PausableStatuses]. Each
// refusal is a [Refusal] saying why. r is changed only on success.
func (r *Request) PauseClock(actor, reason string, now time.Time) error {
	if r.Status.Closed() {
		return r.clockStopped()
	}
	if !RuleFor(r.Regulation, r.Type).Pausable {
		return fmt.Errorf("%s: %w", r.Regulation, ErrNotPausable)
	}
	if r.PausedAt != nil {
		return Refuse(ErrConflict, "The request's clock is paused already.")
	}
	if !slices.Contains(PausableStatuses, r.Status) {
		return Refuse(ErrConflict, fmt.Sprintf("The request is %s: its clock stops only while the identity of the person is being verified (received or verifying).", r.Status))
	}
	r.PausedAt = &now
	r.Pauses = append(slices.Clip(r.Pauses), Pause{By: actor, At: now, Reason: reason})
	return nil
}

// ResumeClock restarts r's paused clock at now: the due date moves by the
// length of the pause, the pause records when it ended, and the reminders
// start over for the new due date (Reminded is emptied). ErrConflict (a
// [Refusal] saying why) when r is closed or its clock is not paused. r is
// changed only on success.
func (r *Request) ResumeClock(now time.Time) error {
	if r.Status.Closed() {
		return r.clockStopped()
	}
	if r.PausedAt == nil || len(r.Pauses) == 0 {
		return Refuse(ErrConflict, "The request's clock is not paused.")
	}
	pauses := slices.Clone(r.Pauses)
	pauses[len(pauses)-1].ResumedAt = &now
	r.DueAt = r.DueAt.Add(now.Sub(*r.PausedAt))
	r.PausedAt, r.Pauses, r.Reminded = nil, pauses, nil
	return nil
}

// clockStopped is the refusal to change the clock of a closed request.
func (r *Request) clockStopped() error {
	return Refuse(ErrConflict, fmt.Sprintf("The request is %s: its clock no longer runs.", r.Status))
}
