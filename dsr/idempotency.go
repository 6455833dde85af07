package dsr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// IdempotencyCollection maps a client's Idempotency-Key to the request it
// filed, so a retried POST never files twice. One document per key, keyed by
// a hash of the caller and the key; inserting it is the atomic step, on
// MongoDB and FerretDB alike.
const IdempotencyCollection = "idempotency_keys"

// ErrIdempotencyMismatch means a key was reused for a different request.
var ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")

type idempotencyRecord struct {
	ID          string    `bson:"_id"`
	RequestID   string    `bson:"request_id"`
	Fingerprint string    `bson:"fingerprint"`
	CreatedAt   time.Time `bson:"created_at"`
}

// IdempotencyID is the document id of a caller's key: neither is stored in
// clear.
func IdempotencyID(caller, key string) string {
	h := sha256.Sum256([]byte(caller + "\x00" + key))
	return hex.EncodeToString(h[:])
}

// Fingerprint identifies what an intake asks for (type, regulation and
// identities, in any order), to tell a retry from a key reused for something
// else. It is keyed by the blind index, so the stored fingerprint cannot be
// matched against guessed identities.
func (in Intake) Fingerprint(idx *BlindIndex) string {
	parts := []string{string(in.Type), string(in.Regulation)}
	ids := make([]string, len(in.Identities))
	for i, id := range in.Identities {
		ids[i] = string(id.Kind) + "=" + id.Value
	}
	sort.Strings(ids)
	return idx.Hash("fingerprint", strings.Join(append(parts, ids...), "\x00"))
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
		return "", ErrIdempotencyMismatch
	}
	return prev.RequestID, nil
}
