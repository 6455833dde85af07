package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// idempotencyRecord is one claimed key, as the doc column of
// idempotency_keys holds it (the document MongoDB keeps).
type idempotencyRecord struct {
	ID          string    `bson:"_id"`
	RequestID   string    `bson:"request_id"`
	Fingerprint string    `bson:"fingerprint"`
	CreatedAt   time.Time `bson:"created_at"`
}

// ClaimIdempotencyKey records that key id files the request requestID. When
// the key was claimed before, it returns the id of the request filed then
// (which may not exist yet if that attempt died before storing it: the
// caller then stores it under that id), or dsr.ErrIdempotencyMismatch when
// the earlier use asked for something else. Reading the key and claiming it
// are one transaction: of two claims, one stores it and the other reads it.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, id, requestID, fingerprint string) (string, error) {
	var out string
	err := s.write(ctx, func(tx *wtx) error {
		var doc string
		err := tx.QueryRowContext(ctx, `SELECT doc FROM idempotency_keys WHERE id = ?`, id).Scan(&doc)
		if errors.Is(err, sql.ErrNoRows) {
			rec, err := encode(idempotencyRecord{ID: id, RequestID: requestID, Fingerprint: fingerprint, CreatedAt: s.now()})
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (id, doc) VALUES (?, ?)`, id, rec); err != nil {
				return fmt.Errorf("claim idempotency key: %w", err)
			}
			out = requestID
			return nil
		}
		if err != nil {
			return fmt.Errorf("read idempotency key: %w", err)
		}
		var prev idempotencyRecord
		if err := decode(doc, &prev); err != nil {
			return fmt.Errorf("read idempotency key: %w", err)
		}
		if prev.Fingerprint != fingerprint {
			return dsr.ErrIdempotencyMismatch
		}
		out = prev.RequestID
		return nil
	})
	if err != nil {
		return "", err
	}
	return out, nil
}
