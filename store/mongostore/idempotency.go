package mongostore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/dsar-project/dsar/dsr"
)

type idempotencyRecord struct {
	ID          string    `bson:"_id"`
	RequestID   string    `bson:"request_id"`
	Fingerprint string    `bson:"fingerprint"`
	CreatedAt   time.Time `bson:"created_at"`
}

// ClaimIdempotencyKey records that key id files the request requestID. When
// the key was claimed before, it returns the id of the request filed then
// (which may not exist yet if that attempt died before storing it: the
// caller then stores it under that id), or ErrIdempotencyMismatch when the
// earlier use asked for something else.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, id, requestID, fingerprint string) (string, error) {
	coll := s.idem
	rec := idempotencyRecord{ID: id, RequestID: requestID, Fingerprint: fingerprint, CreatedAt: s.now()}
	_, err := coll.InsertOne(ctx, rec)
	if err == nil {
		return requestID, nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return "", fmt.Errorf("claim idempotency key: %w", err)
	}
	var prev idempotencyRecord
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&prev); err != nil {
		return "", fmt.Errorf("read idempotency key: %w", err)
	}
	if prev.Fingerprint != fingerprint {
		return "", dsr.ErrIdempotencyMismatch
	}
	return prev.RequestID, nil
}
