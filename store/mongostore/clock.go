package mongostore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
)

// PauseClock stops the clock of request id ([dsr.Request.PauseClock] says
// when it may), in one conditional update fenced by what the rule read
// (not paused, in one of [dsr.PausableStatuses]). ErrNotPausable, or
// ErrConflict when it is paused already, closed, or changed meanwhile.
func (s *Store) PauseClock(ctx context.Context, id, actor, reason string) (*dsr.Request, error) {
	r, err := s.Request(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if err := r.PauseClock(actor, reason, now); err != nil {
		return nil, fmt.Errorf("pause %s: %w", id, err)
	}
	return s.updateFenced(ctx, id, bson.D{{Key: "paused_at", Value: nil}, {Key: "status", Value: bson.D{{Key: "$in", Value: dsr.PausableStatuses}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "paused_at", Value: now}, {Key: "updated_at", Value: now}}},
			{Key: "$push", Value: bson.D{{Key: "pauses", Value: r.Pauses[len(r.Pauses)-1]}}}})
}

// ResumeClock restarts the paused clock of request id
// ([dsr.Request.ResumeClock]: the due date moves by the length of the pause,
// the reminders start over), in one conditional update fenced by the pause
// and due date read. ErrConflict when it is not paused, or changed
// meanwhile.
func (s *Store) ResumeClock(ctx context.Context, id string) (*dsr.Request, error) {
	r, err := s.Request(ctx, id)
	if err != nil {
		return nil, err
	}
	pausedAt, due, now := r.PausedAt, r.DueAt, s.now()
	if err := r.ResumeClock(now); err != nil {
		return nil, fmt.Errorf("resume %s: %w", id, err)
	}
	return s.updateFenced(ctx, id, bson.D{{Key: "paused_at", Value: *pausedAt}, {Key: "due_at", Value: due}},
		bson.D{
			{Key: "$set", Value: bson.D{{Key: "paused_at", Value: nil}, {Key: "due_at", Value: r.DueAt}, {Key: "pauses", Value: r.Pauses}, {Key: "updated_at", Value: now}}},
			{Key: "$unset", Value: bson.D{{Key: "reminded", Value: ""}}},
		})
}

// Extend gives request id the one extension of its deadline its regulation
// allows ([dsr.Request.Extend] decides whether and how far), in one
// conditional update fenced by the due date read (so two agents cannot
// both extend it) and an active status ([dsr.ActiveStatuses]). ErrNoExtension
// when the regulation allows none, it was extended before or it is past
// due, ErrConflict when the request is closed or changed meanwhile.
func (s *Store) Extend(ctx context.Context, id, actor, reason string) (*dsr.Request, error) {
	r, err := s.Request(ctx, id)
	if err != nil {
		return nil, err
	}
	from := r.DueAt
	if err := r.Extend(actor, reason, s.now()); err != nil {
		return nil, fmt.Errorf("extend request %s: %w", id, err)
	}
	out, err := s.updateFenced(ctx, id,
		bson.D{{Key: "due_at", Value: from}, {Key: "extension", Value: nil}, {Key: "status", Value: bson.D{{Key: "$in", Value: dsr.ActiveStatuses}}}},
		bson.D{
			{Key: "$set", Value: bson.D{{Key: "due_at", Value: r.DueAt}, {Key: "updated_at", Value: r.Extension.At}, {Key: "extension", Value: *r.Extension}}},
			{Key: "$addToSet", Value: bson.D{{Key: "pending_notices", Value: bson.D{{Key: "$each", Value: r.ExtensionNotices()}}}}},
			{Key: "$unset", Value: bson.D{{Key: "reminded", Value: ""}}},
		})
	if err != nil {
		return nil, fmt.Errorf("extend: %w", err)
	}
	return out, nil
}
