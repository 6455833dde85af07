package dsr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// OpenDuplicates returns, in one query, every request that a new request of
// one of types, received at since or later, sharing one of hashes
// (blind-index hashes), could be a duplicate of: open ones with an
// established identity ([DuplicateCandidates]). Only the fields
// [PickDuplicate] reads are filled in. It serves a whole batch of filings at
// once; pick each one's duplicate from the result with PickDuplicate.
func (s *Store) OpenDuplicates(ctx context.Context, hashes []string, types []Type, since time.Time) ([]Request, error) {
	if len(hashes) == 0 || len(types) == 0 {
		return nil, nil
	}
	cur, err := s.reqs.Find(ctx,
		bson.D{
			{Key: "identity_hashes", Value: bson.D{{Key: "$in", Value: hashes}}},
			{Key: "type", Value: bson.D{{Key: "$in", Value: types}}},
			{Key: "status", Value: bson.D{{Key: "$in", Value: DuplicateCandidates}}},
			{Key: "received_at", Value: bson.D{{Key: "$gte", Value: since}}},
		},
		options.Find().SetProjection(bson.D{
			{Key: "type", Value: 1}, {Key: "status", Value: 1}, {Key: "identity_hashes", Value: 1}, {Key: "received_at", Value: 1},
		}).SetBatchSize(10_000))
	if err != nil {
		return nil, fmt.Errorf("find duplicates: %w", err)
	}
	var out []Request
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("find duplicates: %w", err)
	}
	return out, nil
}

// PickDuplicate returns what [Store.FindDuplicate] would for a new request
// of type t with hashes, received at since or later, among candidates: the
// most recently received one of type t in one of [DuplicateCandidates]
// sharing a hash (of two received at once, the later id), or nil.
func PickDuplicate(candidates []Request, hashes []string, t Type, since time.Time) *Request {
	var best *Request
	for i := range candidates {
		c := &candidates[i]
		if c.Type != t || c.ReceivedAt.Before(since) || !slices.Contains(DuplicateCandidates, c.Status) ||
			!slices.ContainsFunc(c.IdentityHashes, func(h string) bool { return slices.Contains(hashes, h) }) {
			continue
		}
		if best == nil || c.ReceivedAt.After(best.ReceivedAt) || (c.ReceivedAt.Equal(best.ReceivedAt) && c.ID > best.ID) {
			best = c
		}
	}
	return best
}

// CreateRequests stores new requests and starts their audit chains in at
// most four commands, however many there are: one insert of the requests
// (unordered, so one refused request keeps out no other), one insert of
// their first audit events, one update marking the chains caught up, and,
// only when some request was refused, one delete (below). It returns one
// error per request, nil for those stored: ErrConflict when a request with
// its id exists.
//
// A request whose DuplicateOf names a request of the same call that was not
// stored is removed again and fails too, so no stored request points at a
// request that does not exist.
//
// Starting the audit chains is best effort, as for [Store.CreateRequest]:
// what fails stays marked (audit_due) for the sweep.
func (s *Store) CreateRequests(ctx context.Context, reqs []*Request) []error {
	errs := make([]error, len(reqs))
	if len(reqs) == 0 {
		return errs
	}
	docs := make([]any, len(reqs))
	for i, r := range reqs {
		docs[i] = r
	}
	_, err := s.reqs.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil {
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || len(bwe.WriteErrors) == 0 || bwe.WriteConcernError != nil {
			// Which were stored is unknown: none is reported stored.
			for i := range errs {
				errs[i] = fmt.Errorf("insert requests: %w", err)
			}
			return errs
		}
		for _, we := range bwe.WriteErrors {
			if we.Index < 0 || we.Index >= len(reqs) {
				continue
			}
			if mongo.IsDuplicateKeyError(we) {
				errs[we.Index] = fmt.Errorf("insert request %s: %w", reqs[we.Index].ID, ErrConflict)
			} else {
				errs[we.Index] = fmt.Errorf("insert request: %w", we)
			}
		}
		s.dropOrphans(ctx, reqs, errs)
	}

	var events []any
	var chained []*AuditEvent
	for i, r := range reqs {
		if errs[i] != nil || len(r.History) == 0 || r.Audited != 0 {
			continue
		}
		e := historyEvent(r, 0)
		if checkAuditInput(e.RequestID, e.Actor, e.Kind, e.Data) != nil {
			continue // left to the sweep, which reports it
		}
		e.Seq, e.At, e.ID = 1, s.now(), auditID(r.ID, 1)
		e.Hash = e.ComputeHash()
		events = append(events, e)
		chained = append(chained, e)
	}
	if len(events) == 0 {
		return errs
	}
	_, err = s.db.Collection(AuditCollection).InsertMany(ctx, events, options.InsertMany().SetOrdered(false))
	failed := map[int]bool{}
	if err != nil {
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || len(bwe.WriteErrors) == 0 {
			return errs // the sweep catches up
		}
		for _, we := range bwe.WriteErrors {
			failed[we.Index] = true
		}
	}
	var ids []string
	for i, e := range chained {
		if !failed[i] {
			s.heads.put(e.RequestID, AuditEvent{Seq: e.Seq, Hash: e.Hash})
			ids = append(ids, e.RequestID)
		}
	}
	if len(ids) > 0 {
		leave := s.gate.Enter()
		_, _ = s.reqs.UpdateMany(ctx,
			bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "audited", Value: 0}, {Key: "history", Value: bson.D{{Key: "$size", Value: 1}}}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "audited", Value: 1}, {Key: "audit_due", Value: false}}}})
		leave()
	}
	return errs
}

// dropOrphans removes, in one delete, the stored requests of reqs whose
// DuplicateOf names a request of reqs that was not stored (errs), and fails
// them.
func (s *Store) dropOrphans(ctx context.Context, reqs []*Request, errs []error) {
	lost := map[string]bool{}
	for i, r := range reqs {
		if errs[i] != nil {
			lost[r.ID] = true
		}
	}
	var orphans []string
	var at []int
	for i, r := range reqs {
		if errs[i] == nil && r.DuplicateOf != "" && lost[r.DuplicateOf] {
			orphans, at = append(orphans, r.ID), append(at, i)
		}
	}
	if len(orphans) == 0 {
		return
	}
	leave := s.gate.Enter()
	_, err := s.reqs.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: orphans}}}})
	leave()
	for _, i := range at {
		if err != nil {
			errs[i] = fmt.Errorf("remove request %s, a duplicate of one not stored: %w", reqs[i].ID, err)
		} else {
			errs[i] = fmt.Errorf("request %s duplicates %s, which was not stored: %w", reqs[i].ID, reqs[i].DuplicateOf, ErrConflict)
		}
	}
}
