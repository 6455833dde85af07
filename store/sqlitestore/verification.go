package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// IssueVerification stores the hashes of a new code and link token for a
// request that is verifying, replacing any earlier pair; the tries already
// made still count. The round counts only once the code is sent (see
// VerificationSent). ErrConflict when the request is not verifying,
// ErrNotFound when it does not exist.
func (s *Store) IssueVerification(ctx context.Context, id, codeHash, tokenHash string, expiresAt time.Time) error {
	_, err := s.update(ctx, id, func(d *requestDoc) error {
		if d.Status != dsr.StatusVerifying {
			return conflict("issue verification", id)
		}
		now := s.now()
		if d.Verification == nil {
			d.Verification = &dsr.Verification{}
		}
		v := d.Verification
		v.CodeHash, v.TokenHash = codeHash, tokenHash
		v.ExpiresAt, v.SentAt = expiresAt.UTC().Truncate(time.Millisecond), now
		d.UpdatedAt = now
		return nil
	})
	if err != nil && !errors.Is(err, dsr.ErrConflict) {
		return fmt.Errorf("issue verification: %w", err)
	}
	return err
}

// VerificationSent counts a round: a code reached the mail system. A
// request that is not verifying (or does not exist) is left as it is.
func (s *Store) VerificationSent(ctx context.Context, id string) error {
	_, err := s.update(ctx, id, func(d *requestDoc) error {
		if d.Status != dsr.StatusVerifying {
			return errNoChange
		}
		if d.Verification == nil {
			d.Verification = &dsr.Verification{}
		}
		d.Verification.Round++
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) && !errors.Is(err, dsr.ErrNotFound) {
		return fmt.Errorf("verification sent: %w", err)
	}
	return nil
}

// ReserveTry counts one verification attempt before it is checked, so that
// however many attempts arrive at once, no more than max are ever checked.
// It returns the request as it is after the count. ErrLocked (with the
// request) when max tries were made, ErrNoCode when no code was sent,
// ErrConflict when the request is not verifying, ErrNotFound when it does
// not exist.
func (s *Store) ReserveTry(ctx context.Context, id string, max int) (*dsr.Request, error) {
	var cur *dsr.Request
	r, err := s.update(ctx, id, func(d *requestDoc) error {
		switch {
		case d.Status != dsr.StatusVerifying:
			return fmt.Errorf("verify request %s: %w", id, dsr.ErrConflict)
		case d.Verification == nil:
			return dsr.ErrNoCode
		case d.Verification.Tries >= max:
			cur = &d.Request
			return dsr.ErrLocked
		}
		d.Verification.Tries++
		return nil
	})
	switch {
	case err == nil:
		return r, nil
	case errors.Is(err, dsr.ErrLocked):
		return cur, dsr.ErrLocked
	case errors.Is(err, dsr.ErrConflict), errors.Is(err, dsr.ErrNoCode), errors.Is(err, dsr.ErrNotFound):
		return nil, err
	}
	return nil, fmt.Errorf("reserve verification try: %w", err)
}
