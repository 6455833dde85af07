package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/dsr"
)

// IssueVerification stores the hashes of a new code and link token for a
// request that is verifying, replacing any earlier pair; the tries already
// made still count. The round counts only once the code is sent (see
// VerificationSent). ErrConflict when the request is not verifying.
func (s *Store) IssueVerification(ctx context.Context, id, codeHash, tokenHash string, expiresAt time.Time) error {
	now := s.now()
	res, err := s.reqs.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "status", Value: dsr.StatusVerifying}},
		bson.D{
			{Key: "$set", Value: bson.D{
				{Key: "verification.code_hash", Value: codeHash}, {Key: "verification.token_hash", Value: tokenHash},
				{Key: "verification.expires_at", Value: expiresAt.UTC().Truncate(time.Millisecond)},
				{Key: "verification.sent_at", Value: now}, {Key: "updated_at", Value: now},
			}},
			{Key: "$inc", Value: bson.D{{Key: "verification.round", Value: 0}, {Key: "verification.tries", Value: 0}}},
		})
	if err != nil {
		return fmt.Errorf("issue verification: %w", err)
	}
	if res.MatchedCount == 0 {
		return s.missOrConflict(ctx, id, "issue verification")
	}
	return nil
}

// VerificationSent counts a round: a code reached the mail system.
func (s *Store) VerificationSent(ctx context.Context, id string) error {
	if _, err := s.reqs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "status", Value: dsr.StatusVerifying}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "verification.round", Value: 1}}}}); err != nil {
		return fmt.Errorf("verification sent: %w", err)
	}
	return nil
}

// ReserveTry counts one verification attempt before it is checked, so that
// however many attempts arrive at once, no more than max are ever checked.
// It returns the request as it is after the count. ErrLocked when max tries
// were made, ErrNoCode when no code was sent, ErrConflict when the request is
// not verifying, ErrNotFound when it does not exist.
func (s *Store) ReserveTry(ctx context.Context, id string, max int) (*dsr.Request, error) {
	var r dsr.Request
	err := s.reqs.FindOneAndUpdate(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "status", Value: dsr.StatusVerifying}, {Key: "verification.tries", Value: bson.D{{Key: "$lt", Value: max}}}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "verification.tries", Value: 1}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After),
	).Decode(&r)
	if err == nil {
		return &r, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("reserve verification try: %w", err)
	}
	cur, err := s.Request(ctx, id)
	switch {
	case err != nil:
		return nil, err
	case cur.Status != dsr.StatusVerifying:
		return nil, fmt.Errorf("verify request %s: %w", id, dsr.ErrConflict)
	case cur.Verification == nil:
		return nil, dsr.ErrNoCode
	}
	return cur, dsr.ErrLocked
}
