package sqlitestore

import (
	"context"
	"errors"
	"fmt"

	"github.com/dsar-project/dsar/dsr"
)

// Appeal files the appeal against denied request id ([dsr.NewAppeal] says
// when one is possible and what it is). One appeal per request: in one
// transaction the denied request is claimed (AppealedBy) and the appeal
// stored with its audit chain started, so a claim never names an appeal
// that was not stored. A claim whose appeal ended undecided, or names no
// request, is free ([dsr.AppealClaimFree]); any other claim makes it
// ErrNotAppealable.
func (s *Store) Appeal(ctx context.Context, id string, f dsr.AppealFiling) (*dsr.Request, error) {
	var a *requestDoc
	err := s.write(ctx, func(tx *wtx) error {
		d, err := loadRequest(ctx, tx, id)
		if err != nil {
			return err
		}
		appeal, err := dsr.NewAppeal(&d.Request, f, s.now())
		var ve *dsr.ValidationError
		if errors.As(err, &ve) {
			return err
		}
		if err != nil {
			return fmt.Errorf("appeal %s: %w", id, err)
		}
		if d.AppealedBy != "" {
			var prior *dsr.Request
			p, err := loadRequest(ctx, tx, d.AppealedBy)
			switch {
			case err == nil:
				prior = &p.Request
			case !errors.Is(err, dsr.ErrNotFound):
				return fmt.Errorf("appeal %s: %w", id, err)
			}
			if !dsr.AppealClaimFree(&d.Request, prior) {
				return fmt.Errorf("appeal %s: appealed already: %w", id, dsr.ErrNotAppealable)
			}
		}
		hashes, proven := d.IdentityHashes, d.ProvenHashes
		d.AppealedBy = appeal.ID
		if err := s.catchUp(ctx, tx, &d.Request); err != nil {
			return fmt.Errorf("appeal %s: %w", id, err)
		}
		if err := saveRequest(ctx, tx, d, hashes, proven); err != nil {
			return fmt.Errorf("appeal %s: %w", id, err)
		}
		a = &requestDoc{Request: *appeal}
		if err := s.catchUp(ctx, tx, &a.Request); err != nil {
			return fmt.Errorf("appeal %s: %w", id, err)
		}
		if err := insertRequest(ctx, tx, a); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("appeal %s: insert request %s: %w", id, appeal.ID, dsr.ErrConflict)
			}
			return fmt.Errorf("appeal %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &a.Request, nil
}
