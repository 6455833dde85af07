package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dsar-project/dsar/dsr"
)

// PauseClock stops the clock of request id ([dsr.Request.PauseClock] says
// when it may), in one transaction. ErrNotPausable, or ErrConflict when it
// is paused already or closed, or not in one of [dsr.PausableStatuses].
func (s *Store) PauseClock(ctx context.Context, id, actor, reason string) (*dsr.Request, error) {
	return s.decide(ctx, id, "pause clock", func(d *requestDoc) error {
		now := s.now()
		if err := d.PauseClock(actor, reason, now); err != nil {
			return fmt.Errorf("pause %s: %w", id, err)
		}
		d.UpdatedAt = now
		return nil
	})
}

// ResumeClock restarts the paused clock of request id
// ([dsr.Request.ResumeClock]: the due date moves by the length of the pause,
// the reminders start over), in one transaction. ErrConflict when it is not
// paused, or closed.
func (s *Store) ResumeClock(ctx context.Context, id string) (*dsr.Request, error) {
	return s.decide(ctx, id, "resume clock", func(d *requestDoc) error {
		now := s.now()
		if err := d.ResumeClock(now); err != nil {
			return fmt.Errorf("resume %s: %w", id, err)
		}
		d.UpdatedAt = now
		return nil
	})
}

// Extend gives request id the one extension of its deadline its regulation
// allows ([dsr.Request.Extend] decides whether and how far), in one
// transaction, so two agents cannot both extend it. ErrNoExtension when the
// regulation allows none, it was extended before or it is past due,
// ErrConflict when the request is not active ([dsr.ActiveStatuses]).
func (s *Store) Extend(ctx context.Context, id, actor, reason string) (*dsr.Request, error) {
	return s.decide(ctx, id, "extend", func(d *requestDoc) error {
		if err := d.Extend(actor, reason, s.now()); err != nil {
			return fmt.Errorf("extend request %s: %w", id, err)
		}
		if !slices.Contains(dsr.ActiveStatuses, d.Status) {
			return conflict("extend", id)
		}
		d.UpdatedAt = d.Extension.At
		return nil
	})
}

// decide is update for a change a rule of package dsr decides: fn's
// refusal, and dsr.ErrNotFound, come back as they are; an error of the
// store is wrapped with what.
func (s *Store) decide(ctx context.Context, id, what string, fn func(d *requestDoc) error) (*dsr.Request, error) {
	var refused error
	r, err := s.update(ctx, id, func(d *requestDoc) error {
		refused = fn(d)
		return refused
	})
	switch {
	case err == nil:
		return r, nil
	case refused != nil, errors.Is(err, dsr.ErrNotFound):
		return nil, err
	}
	return nil, fmt.Errorf("%s: %w", what, err)
}
