package sqlitestore

import (
	"context"
	"fmt"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// HoldForHook records that the pre-fan-out hook held verified request id
// until until; ids, when not nil, become its identities (hashes their blind
// index): those the hook added with its answer. dsr.ErrConflict when the
// request is not verified or was held before.
func (s *Store) HoldForHook(ctx context.Context, id string, until time.Time, ids []dsr.Identity, hashes []string) (*dsr.Request, error) {
	r, err := s.update(ctx, id, func(d *requestDoc) error {
		if d.Status != dsr.StatusVerified || d.HookHold != nil {
			return conflict("hold for hook", id)
		}
		now := s.now()
		d.HookHold = &dsr.HookHold{At: now, Until: until.UTC().Truncate(time.Millisecond)}
		d.UpdatedAt = now
		if ids != nil {
			d.Identities, d.IdentityHashes = ids, hashes
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hold for hook: %w", err)
	}
	return r, nil
}

// ResumeHook lifts the pre-fan-out hook's hold on verified request id,
// recording msgID, the webhook-id of the resume; ids, when not nil, become
// its identities (hashes their blind index). dsr.ErrConflict when the
// request is not verified, not held, or resumed already.
func (s *Store) ResumeHook(ctx context.Context, id, msgID string, ids []dsr.Identity, hashes []string) (*dsr.Request, error) {
	r, err := s.update(ctx, id, func(d *requestDoc) error {
		if d.Status != dsr.StatusVerified || !d.HookHold.Holding() {
			return conflict("resume from hook", id)
		}
		now := s.now()
		hold := *d.HookHold
		hold.ResumedAt, hold.ResumeID = &now, msgID
		d.HookHold, d.UpdatedAt = &hold, now
		if ids != nil {
			d.Identities, d.IdentityHashes = ids, hashes
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("resume from hook: %w", err)
	}
	return r, nil
}
