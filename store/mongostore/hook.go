package mongostore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
)

// HoldForHook records that the pre-fan-out hook held verified request id
// until until; ids, when not nil, become its identities (hashes their blind
// index): those the hook added with its answer. dsr.ErrConflict when the
// request is not verified or was held before.
func (s *Store) HoldForHook(ctx context.Context, id string, until time.Time, ids []dsr.Identity, hashes []string) (*dsr.Request, error) {
	now := s.now()
	set := bson.D{{Key: "hook_hold", Value: dsr.HookHold{At: now, Until: until.UTC().Truncate(time.Millisecond)}}, {Key: "updated_at", Value: now}}
	if ids != nil {
		set = append(set, bson.E{Key: "identities", Value: ids}, bson.E{Key: "identity_hashes", Value: hashes})
	}
	r, err := s.updateFenced(ctx, id, bson.D{{Key: "status", Value: dsr.StatusVerified}, {Key: "hook_hold", Value: nil}},
		bson.D{{Key: "$set", Value: set}})
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
	now := s.now()
	set := bson.D{{Key: "hook_hold.resumed_at", Value: now}, {Key: "hook_hold.resume_id", Value: msgID}, {Key: "updated_at", Value: now}}
	if ids != nil {
		set = append(set, bson.E{Key: "identities", Value: ids}, bson.E{Key: "identity_hashes", Value: hashes})
	}
	r, err := s.updateFenced(ctx, id, bson.D{
		{Key: "status", Value: dsr.StatusVerified},
		{Key: "hook_hold", Value: bson.D{{Key: "$ne", Value: nil}}},
		{Key: "hook_hold.resumed_at", Value: nil},
	}, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return nil, fmt.Errorf("resume from hook: %w", err)
	}
	return r, nil
}
