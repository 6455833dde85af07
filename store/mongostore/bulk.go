package mongostore

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/dsr"
)

// CreateRequests stores new requests with their audit chains started, in
// two commands however many there are: one insert of their first audit
// events ("filed"), then one of the requests, marked caught up with their
// chains when "filed" is their whole history, else still due (both unordered, so one refused document keeps out no other). It
// returns one error per request, nil for those stored: ErrConflict when a
// request with its id exists.
//
// A request whose DuplicateOf names a request of the same call that was not
// stored is removed again and fails too, so no stored request points at a
// request that does not exist. The events of the requests refused are
// removed, unless a request of the call was stored under the same id (an id
// given twice is stored once, with its chain). These removals cost one command each, only when some request was
// refused.
//
// The events go first so that a stored request never lacks its first
// event: a request whose event could not be stored is stored marked behind
// (audit_due) for the sweep, as [Store.CreateRequest] leaves it. A process
// that dies between the two inserts, or an insert whose outcome is unknown,
// can leave "filed" events of requests never stored.
func (s *Store) CreateRequests(ctx context.Context, reqs []*dsr.Request) []error {
	errs := make([]error, len(reqs))
	if len(reqs) == 0 {
		return errs
	}
	events := map[string]*dsr.AuditEvent{}
	var docs []any
	var of []*dsr.Request // the request of each event
	for _, r := range reqs {
		if len(r.History) == 0 || r.Audited != 0 {
			continue
		}
		e := dsr.HistoryEvent(r, 0)
		if dsr.CheckAuditInput(e.RequestID, e.Actor, e.Kind, e.Data) != nil {
			continue // left to the sweep, which reports it
		}
		e.Seq, e.At, e.ID = 1, s.now(), dsr.AuditEventID(r.ID, 1)
		e.Hash = e.ComputeHash()
		docs, of = append(docs, e), append(of, r)
	}
	if len(docs) > 0 {
		_, err := s.audit.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		failed := map[int]bool{}
		var bwe mongo.BulkWriteException
		switch {
		case err == nil:
		case errors.As(err, &bwe) && len(bwe.WriteErrors) > 0:
			for _, we := range bwe.WriteErrors {
				failed[we.Index] = true
			}
		default:
			docs = nil // none is known stored: the sweep catches up
		}
		for i := range docs {
			if !failed[i] {
				events[of[i].ID] = docs[i].(*dsr.AuditEvent)
			}
		}
	}
	docs = make([]any, len(reqs))
	for i, r := range reqs {
		c := *r
		if events[r.ID] != nil {
			// A history of more entries (held for approval at intake) stays
			// due: its caller catches it up, else the sweep does.
			c.Audited, c.AuditDue = 1, len(r.History) > 1
		}
		docs[i] = &c
	}
	_, err := s.reqs.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil {
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || len(bwe.WriteErrors) == 0 || bwe.WriteConcernError != nil {
			// Which were stored is unknown: none is reported stored, and
			// every event is kept.
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
				errs[we.Index] = fmt.Errorf("insert request %s: %w", reqs[we.Index].ID, dsr.ErrConflict)
			} else {
				errs[we.Index] = fmt.Errorf("insert request: %w", we)
			}
		}
		s.dropOrphans(ctx, reqs, errs, events)
	}
	for i, r := range reqs {
		if errs[i] != nil {
			continue
		}
		*r = *docs[i].(*dsr.Request)
		if e := events[r.ID]; e != nil {
			s.heads.put(r.ID, dsr.AuditEvent{Seq: e.Seq, Hash: e.Hash})
		} else {
			s.heads.put(r.ID, dsr.AuditEvent{}) // a new request's chain is empty
		}
	}
	return errs
}

// dropOrphans removes, in one delete, the stored requests of reqs whose
// DuplicateOf names a request of reqs that was not stored (errs), and fails
// them; then, in one more, the events this call stored for the requests
// not stored.
func (s *Store) dropOrphans(ctx context.Context, reqs []*dsr.Request, errs []error, events map[string]*dsr.AuditEvent) {
	// An id is lost when no request of the call was stored under it: one
	// id given twice is stored once, and its event kept.
	stored, lost := map[string]bool{}, map[string]bool{}
	for i, r := range reqs {
		if errs[i] == nil {
			stored[r.ID] = true
		}
	}
	for i, r := range reqs {
		if errs[i] != nil && !stored[r.ID] {
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
	if len(orphans) > 0 {
		_, err := s.reqs.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: orphans}}}})
		for _, i := range at {
			if err != nil {
				errs[i] = fmt.Errorf("remove request %s, a duplicate of one not stored: %w", reqs[i].ID, err)
			} else {
				errs[i] = fmt.Errorf("request %s duplicates %s, which was not stored: %w", reqs[i].ID, reqs[i].DuplicateOf, dsr.ErrConflict)
			}
		}
	}
	// The events this call stored for ids it stored no request under
	// (the orphans removed included).
	clear(stored)
	for i, r := range reqs {
		if errs[i] == nil {
			stored[r.ID] = true
		}
	}
	var drop []string
	dropped := map[string]bool{}
	for i, r := range reqs {
		if errs[i] != nil && events[r.ID] != nil && !stored[r.ID] && !dropped[r.ID] {
			drop, dropped[r.ID] = append(drop, events[r.ID].ID), true
		}
	}
	if len(drop) > 0 {
		_, _ = s.audit.DeleteByIDs(ctx, drop)
	}
}
