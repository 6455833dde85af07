package mongostore

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
)

// Appeal files the appeal against denied request id ([dsr.NewAppeal] says
// when one is possible and what it is). One appeal per request: the denied
// request is claimed first (AppealedBy, fenced on the claim read), then the
// appeal is stored; a claim whose appeal was never stored or ended
// undecided is free ([dsr.AppealClaimFree]).
func (s *Store) Appeal(ctx context.Context, id string, f dsr.AppealFiling) (*dsr.Request, error) {
	r, err := s.Request(ctx, id)
	if err != nil {
		return nil, err
	}
	a, err := dsr.NewAppeal(r, f, s.now())
	var ve *dsr.ValidationError
	if errors.As(err, &ve) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("appeal %s: %w", id, err)
	}
	var claim any // nil: unclaimed
	if r.AppealedBy != "" {
		prior, err := s.Request(ctx, r.AppealedBy)
		if err != nil && !errors.Is(err, dsr.ErrNotFound) {
			return nil, fmt.Errorf("appeal %s: %w", id, err)
		}
		if !dsr.AppealClaimFree(r, prior) {
			return nil, fmt.Errorf("appeal %s: appealed already: %w", id, dsr.ErrNotAppealable)
		}
		claim = r.AppealedBy
	}
	_, err = s.updateFenced(ctx, id, bson.D{{Key: "status", Value: dsr.StatusDenied}, {Key: "appealed_by", Value: claim}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "appealed_by", Value: a.ID}}}})
	if errors.Is(err, dsr.ErrConflict) {
		return nil, fmt.Errorf("appeal %s: appealed already: %w", id, dsr.ErrNotAppealable)
	}
	if err != nil {
		return nil, fmt.Errorf("appeal %s: %w", id, err)
	}
	if err := s.CreateRequest(ctx, a); err != nil {
		// Release the claim, so the appeal can be filed again. (A crash
		// right here leaves a claim naming no request, which the next
		// appeal finds free.)
		_, uerr := s.reqs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "appealed_by", Value: a.ID}},
			bson.D{{Key: "$unset", Value: bson.D{{Key: "appealed_by", Value: ""}}}})
		return nil, errors.Join(fmt.Errorf("appeal %s: %w", id, err), uerr)
	}
	return a, nil
}
