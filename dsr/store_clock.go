package dsr

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// PauseClock stops the clock of an open request, where its rule allows it
// (GDPR: while waiting for information asked for to confirm identity), in
// one conditional update. ErrNotPausable, or ErrConflict when it is paused
// already or closed.
func (s *Store) PauseClock(ctx context.Context, id, actor, reason string) (*Request, error) {
	r, err := s.Request(ctx, id)
	if err != nil {
		return nil, err
	}
	if !RuleFor(r.Regulation, r.Type).Pausable {
		return nil, fmt.Errorf("pause %s: %s: %w", id, r.Regulation, ErrNotPausable)
	}
	now := s.now()
	return s.updateFenced(ctx, id, bson.D{{Key: "paused_at", Value: nil}, {Key: "status", Value: bson.D{{Key: "$in", Value: PausableStatuses}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "paused_at", Value: now}, {Key: "updated_at", Value: now}}},
			{Key: "$push", Value: bson.D{{Key: "pauses", Value: Pause{By: actor, At: now, Reason: reason}}}}})
}

// ResumeClock restarts a paused clock: the due date moves by the length of
// the pause, and the reminders start over for it. ErrConflict when it is
// not paused.
func (s *Store) ResumeClock(ctx context.Context, id string) (*Request, error) {
	r, err := s.Request(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.PausedAt == nil || len(r.Pauses) == 0 {
		return nil, fmt.Errorf("resume %s: not paused: %w", id, ErrConflict)
	}
	now := s.now()
	pauses := append([]Pause(nil), r.Pauses...)
	pauses[len(pauses)-1].ResumedAt = &now
	due := r.DueAt.Add(now.Sub(*r.PausedAt))
	return s.updateFenced(ctx, id, bson.D{{Key: "paused_at", Value: *r.PausedAt}, {Key: "due_at", Value: r.DueAt}},
		bson.D{
			{Key: "$set", Value: bson.D{{Key: "paused_at", Value: nil}, {Key: "due_at", Value: due}, {Key: "pauses", Value: pauses}, {Key: "updated_at", Value: now}}},
			// The reminders count down to the new due date.
			{Key: "$unset", Value: bson.D{{Key: "reminded", Value: ""}}},
		})
}

// Extend gives an open request the one extension of its deadline its
// regulation allows, with a reason, in one conditional update (fenced by the
// current due date, so two agents cannot both extend it); the person is
// told (NoticeExtended), and the reminders start over for the new date.
// ErrNoExtension when the regulation allows none, it was extended before or
// it is past due, ErrConflict when the request is closed or changed
// meanwhile.
func (s *Store) Extend(ctx context.Context, id, actor, reason string) (*Request, error) {
	r, err := s.Request(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Extension != nil {
		return nil, fmt.Errorf("extend request %s: extended on %s already: %w", id, r.Extension.At.Format(time.DateOnly), ErrNoExtension)
	}
	to, ok := Extended(r.Regulation, r.Type, r.DueAt)
	if !ok {
		return nil, fmt.Errorf("extend request %s: %s allows no extension for %s: %w", id, r.Regulation, r.Type, ErrNoExtension)
	}
	if r.Status.Closed() {
		return nil, fmt.Errorf("extend request %s: it is %s: %w", id, r.Status, ErrConflict)
	}
	if s.now().After(r.DueAt) {
		// The law wants the extension decided, and the person told, within
		// the first period.
		return nil, fmt.Errorf("extend request %s: past its due date: %w", id, ErrNoExtension)
	}
	now := s.now()
	out, err := s.updateFenced(ctx, id,
		bson.D{{Key: "due_at", Value: r.DueAt}, {Key: "extension", Value: nil}, {Key: "status", Value: bson.D{{Key: "$in", Value: OpenStatuses}}}},
		bson.D{
			{Key: "$set", Value: bson.D{
				{Key: "due_at", Value: to}, {Key: "updated_at", Value: now},
				{Key: "extension", Value: Extension{By: actor, At: now, Reason: reason, From: r.DueAt}},
			}},
			{Key: "$addToSet", Value: bson.D{{Key: "pending_notices", Value: NoticeExtended}}},
			// The reminders count down to the new due date.
			{Key: "$unset", Value: bson.D{{Key: "reminded", Value: ""}}},
		})
	if err != nil {
		return nil, fmt.Errorf("extend: %w", err)
	}
	return out, nil
}
