package mongostore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
)

// dueProjection reads only the fields of [dsr.Due].
var dueProjection = bson.D{{Key: "due_at", Value: 1}}

// EachToRemind calls fn for every open request, its clock running and not
// overdue, due in [from, to) that has not had the reminder n days before
// its due date. The index checks_due serves it.
func (s *Store) EachToRemind(ctx context.Context, from, to time.Time, n int, fn func(*dsr.Due) error) error {
	return scan(ctx, s.reqs, bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: dsr.OverdueStatuses}}},
		{Key: "due_at", Value: bson.D{{Key: "$gte", Value: from.UTC()}, {Key: "$lt", Value: to.UTC()}}},
		{Key: "reminded", Value: bson.D{{Key: "$ne", Value: n}}},
		{Key: "paused_at", Value: nil},
		{Key: "overdue_at", Value: nil},
	}, dueProjection, fn)
}

// EachToEscalate calls fn for every open request, its clock running, due
// before now and not marked overdue yet. The index checks_due serves it.
func (s *Store) EachToEscalate(ctx context.Context, now time.Time, fn func(*dsr.Due) error) error {
	return scan(ctx, s.reqs, bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: dsr.OverdueStatuses}}},
		{Key: "due_at", Value: bson.D{{Key: "$lt", Value: now.UTC()}}},
		{Key: "overdue_at", Value: nil},
		{Key: "paused_at", Value: nil},
	}, dueProjection, fn)
}

// Remind records that the reminder n days before its due date is due for
// request id, in one conditional update that repeats the conditions of
// [Store.EachToRemind] (open, clock running, not overdue, due in [from,
// to)): it returns false when it was recorded before, or the request
// changed since it was read (closed, paused, extended), so a check run
// twice reminds once and never for a due date that moved.
func (s *Store) Remind(ctx context.Context, id string, n int, from, to time.Time) (bool, error) {
	res, err := s.reqs.UpdateOne(ctx,
		bson.D{
			{Key: "_id", Value: id}, {Key: "reminded", Value: bson.D{{Key: "$ne", Value: n}}},
			{Key: "status", Value: bson.D{{Key: "$in", Value: dsr.OverdueStatuses}}},
			{Key: "due_at", Value: bson.D{{Key: "$gte", Value: from.UTC()}, {Key: "$lt", Value: to.UTC()}}},
			{Key: "paused_at", Value: nil}, {Key: "overdue_at", Value: nil},
		},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "reminded", Value: n}, {Key: "pending_notices", Value: dsr.AlertReminder(n)}}}})
	if err != nil {
		return false, fmt.Errorf("remind: %w", err)
	}
	return res.ModifiedCount == 1, nil
}

// Escalate marks request id overdue, in one conditional update that
// repeats the conditions of [Store.EachToEscalate] (open, clock running,
// due before now), and makes its overdue alert due; false when it was
// marked before or changed since it was read.
func (s *Store) Escalate(ctx context.Context, id string, now time.Time) (bool, error) {
	res, err := s.reqs.UpdateOne(ctx,
		bson.D{
			{Key: "_id", Value: id}, {Key: "overdue_at", Value: nil},
			{Key: "status", Value: bson.D{{Key: "$in", Value: dsr.OverdueStatuses}}},
			{Key: "due_at", Value: bson.D{{Key: "$lt", Value: now.UTC()}}},
			{Key: "paused_at", Value: nil},
		},
		bson.D{
			{Key: "$set", Value: bson.D{{Key: "overdue_at", Value: s.now()}}},
			{Key: "$addToSet", Value: bson.D{{Key: "pending_notices", Value: dsr.AlertOverdue}}},
		})
	if err != nil {
		return false, fmt.Errorf("escalate: %w", err)
	}
	return res.ModifiedCount == 1, nil
}

// EachExportsToPurge calls fn with the id of every access request closed
// before t whose exported data is still kept. The index checks_exports
// serves it.
func (s *Store) EachExportsToPurge(ctx context.Context, t time.Time, fn func(*dsr.Due) error) error {
	return scan(ctx, s.reqs, bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: dsr.ClosedStatuses}}},
		{Key: "closed_at", Value: bson.D{{Key: "$lt", Value: t.UTC()}}},
		{Key: "type", Value: dsr.TypeAccess},
		{Key: "exports_purged_at", Value: nil},
	}, dueProjection, fn)
}

// EachIdentitiesToPurge calls fn with the id of every request closed before
// t whose clear identities are still kept. The index checks_identities
// serves it.
func (s *Store) EachIdentitiesToPurge(ctx context.Context, t time.Time, fn func(*dsr.Due) error) error {
	return scan(ctx, s.reqs, bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: dsr.ClosedStatuses}}},
		{Key: "closed_at", Value: bson.D{{Key: "$lt", Value: t.UTC()}}},
		{Key: "purged_at", Value: nil},
	}, dueProjection, fn)
}

// PurgeExports deletes the exported data of a request and records when; it
// returns false when it was purged before.
func (s *Store) PurgeExports(ctx context.Context, id string) (bool, error) {
	_, err := s.exports.DeleteMany(ctx, bson.D{{Key: "request_id", Value: id}})
	if err != nil {
		return false, fmt.Errorf("purge exports: %w", err)
	}
	res, err := s.reqs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "exports_purged_at", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "exports_purged_at", Value: s.now()}}}, {Key: "$unset", Value: bson.D{{Key: "export_key", Value: ""}}}})
	if err != nil {
		return false, fmt.Errorf("purge exports: %w", err)
	}
	return res.ModifiedCount == 1, nil
}

// PurgeIdentities removes the clear identities (and an agent's details,
// and a correction's new values) of a closed request, and the copies its jobs carry, keeping its blind index,
// history and audit chain as evidence; false when they were purged before.
func (s *Store) PurgeIdentities(ctx context.Context, id string) (bool, error) {
	// The jobs' copies first: once the request is marked purged, nothing
	// comes back for them.
	if err := s.purgeJobIdentities(ctx, id); err != nil {
		return false, err
	}
	res, err := s.reqs.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "purged_at", Value: nil}, {Key: "status", Value: bson.D{{Key: "$in", Value: dsr.ClosedStatuses}}}},
		bson.D{
			{Key: "$set", Value: bson.D{{Key: "identities", Value: bson.A{}}, {Key: "purged_at", Value: s.now()}, {Key: "note", Value: ""}}},
			{Key: "$unset", Value: bson.D{{Key: "agent", Value: ""}, {Key: "new_values", Value: ""}, {Key: "data_key", Value: ""}}},
		})
	if err != nil {
		return false, fmt.Errorf("purge identities: %w", err)
	}
	return res.ModifiedCount == 1, nil
}
