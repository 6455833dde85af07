package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
)

// catchUpAudit copies the history entries of r not yet in its audit chain
// into it ("status" events), then records how far the chain has caught up.
// It is best effort: what it cannot do now stays marked (audit_due) for the
// sweep ([Store.EachAuditDue], [Store.CatchUpAudit]).
func (s *Store) catchUpAudit(ctx context.Context, r *dsr.Request) {
	_ = s.CatchUpAudit(ctx, r)
}

// CatchUpAudit copies the history entries of r beyond r.Audited into the
// audit chain and marks them copied. The mark is fenced by the count read,
// so of two catch-ups one records it.
func (s *Store) CatchUpAudit(ctx context.Context, r *dsr.Request) error {
	for i := r.Audited; i < len(r.History); i++ {
		e := dsr.HistoryEvent(r, i)
		if _, err := s.AppendAudit(ctx, r.ID, e.Actor, e.Kind, e.Data); err != nil {
			return err
		}
	}
	_, err := s.reqs.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: r.ID}, {Key: "audited", Value: r.Audited}, {Key: "history", Value: bson.D{{Key: "$size", Value: len(r.History)}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "audited", Value: len(r.History)}, {Key: "audit_due", Value: false}}}})
	return err
}

// EachAuditDue calls fn for every request whose audit chain is behind its
// history since before.
func (s *Store) EachAuditDue(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error {
	return each(ctx, s.reqs, bson.D{{Key: "audit_due", Value: true}, {Key: "updated_at", Value: bson.D{{Key: "$lt", Value: before}}}}, fn)
}
