package dsr

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Appeal files the appeal against a denied request, where its regulation
// grants one (VCDPA, CTDPA): a new request of the same type and identities,
// linked both ways, due within AppealPeriod, waiting for an agent's review.
// It inherits the denied request's proof of identity; a request denied as
// unverifiable, or never verified, is appealed only with a new one
// (ErrProofRequired otherwise): the filing agent's attestation, or the
// portal's verification, which the appeal then waits for in verifying.
// One appeal per request: the denied request is claimed first.
func (s *Store) Appeal(ctx context.Context, id string, f AppealFiling) (*Request, error) {
	r, err := s.Request(ctx, id)
	if err != nil {
		return nil, err
	}
	// One appeal: the decision on an appeal is final.
	if r.Status != StatusDenied || !Appealable(r.Regulation) || len(r.Identities) == 0 || r.AppealOf != "" {
		return nil, fmt.Errorf("appeal %s: %w", id, ErrNotAppealable)
	}
	status, method, proven := StatusAwaitingApproval, r.VerificationMethod, r.ProvenHashes
	var notices []string
	switch {
	case f.Attested != "":
		status, method, proven = StatusAwaitingApproval, f.Attested, f.Index.HashAll(Given(r.Identities))
	case f.Verify:
		if !slices.ContainsFunc(r.Identities, func(i Identity) bool { return i.Kind == KindEmail && i.Source == SourceSubject }) {
			var ve ValidationError
			ve.Add("identity.verified", "the portal's verification needs the person's email, which the denied request does not hold; attest a verification instead (verified: true with a method)")
			return nil, &ve
		}
		// Proven by the emailed code, as on the portal.
		status, method, proven, notices = StatusVerifying, "", nil, []string{NoticeVerify}
	case !r.Proven():
		return nil, fmt.Errorf("appeal %s: %w", id, ErrProofRequired)
	}
	appealID, err := NewRequestID()
	if err != nil {
		return nil, err
	}
	// The claim of an earlier appeal that was never decided (or never
	// stored) is free: the one appeal the law grants is one decision.
	var claim any // nil: unclaimed
	if r.AppealedBy != "" {
		prior, err := s.Request(ctx, r.AppealedBy)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && prior.Undecided()):
			claim = r.AppealedBy
		case err != nil:
			return nil, fmt.Errorf("appeal %s: %w", id, err)
		default:
			return nil, fmt.Errorf("appeal %s: appealed already: %w", id, ErrNotAppealable)
		}
	}
	_, err = s.updateFenced(ctx, id, bson.D{{Key: "status", Value: StatusDenied}, {Key: "appealed_by", Value: claim}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "appealed_by", Value: appealID}}}})
	if errors.Is(err, ErrConflict) {
		return nil, fmt.Errorf("appeal %s: appealed already: %w", id, ErrNotAppealable)
	}
	if err != nil {
		return nil, fmt.Errorf("appeal %s: %w", id, err)
	}
	now := s.now()
	a := &Request{
		ID: appealID, Type: r.Type, Regulation: r.Regulation, Status: status, Source: "appeal", FiledBy: f.Actor,
		Identities: r.Identities, IdentityHashes: r.IdentityHashes, ProvenHashes: proven, ReceivedAt: now, DueAt: Calendar{}.Add(now, AppealPeriod),
		UpdatedAt: now, Notify: r.Notify || f.Verify, PendingNotices: notices, AppealOf: r.ID, AuditDue: true, VerificationMethod: method,
		History: []Transition{{To: status, At: now, Actor: f.Actor, Reason: "appeal of " + r.ID + ": " + f.Reason}},
	}
	if err := s.CreateRequest(ctx, a); err != nil {
		// Release the claim, so the appeal can be filed again. (A crash
		// right here leaves a claim naming no request, which the next
		// appeal finds free.)
		_, uerr := s.reqs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "appealed_by", Value: appealID}},
			bson.D{{Key: "$unset", Value: bson.D{{Key: "appealed_by", Value: ""}}}})
		return nil, errors.Join(fmt.Errorf("appeal %s: %w", id, err), uerr)
	}
	return a, nil
}
