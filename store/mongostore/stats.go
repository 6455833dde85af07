package mongostore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/dsr"
)

// CountRequests counts every request by status, type and regulation, in one
// aggregate. Its $match on status (every known status) lets MongoDB answer
// from the status_type_regulation index alone.
func (s *Store) CountRequests(ctx context.Context) ([]dsr.RequestCount, error) {
	match := bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: dsr.Statuses}}}}
	return s.countBy(ctx, match, true)
}

// CountOverdue counts, by type and regulation, the requests past their due
// date at now that are still to be answered (the statuses of
// [dsr.OverdueStatuses]), their clock running: a paused clock is not late.
func (s *Store) CountOverdue(ctx context.Context, now time.Time) ([]dsr.RequestCount, error) {
	match := bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: dsr.OverdueStatuses}}},
		{Key: "due_at", Value: bson.D{{Key: "$lt", Value: now.UTC()}}},
		{Key: "paused_at", Value: nil},
	}
	return s.countBy(ctx, match, false)
}

// CountWaitingJobs counts, by connector and action, the jobs waiting on a
// remote system that finishes later, in one aggregate on the jobs'
// status_updated index.
func (s *Store) CountWaitingJobs(ctx context.Context) ([]dsr.JobCount, error) {
	cur, err := s.jobs.Aggregate(ctx, bson.A{
		bson.D{{Key: "$match", Value: bson.D{{Key: "status", Value: dsr.JobWaiting}}}},
		bson.D{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: bson.D{{Key: "connector", Value: "$connector"}, {Key: "action", Value: "$action"}}},
			{Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}},
		}}},
	})
	if err != nil {
		return nil, fmt.Errorf("count waiting jobs: %w", err)
	}
	var rows []struct {
		ID struct {
			Connector string     `bson:"connector"`
			Action    dsr.Action `bson:"action"`
		} `bson:"_id"`
		N int64 `bson:"n"`
	}
	if err := cur.All(ctx, &rows); err != nil {
		return nil, fmt.Errorf("count waiting jobs: %w", err)
	}
	out := make([]dsr.JobCount, len(rows))
	for i, r := range rows {
		out[i] = dsr.JobCount{Connector: r.ID.Connector, Action: r.ID.Action, N: r.N}
	}
	return out, nil
}

// countBy groups the requests matching match by type and regulation, and by
// status too when byStatus is set.
func (s *Store) countBy(ctx context.Context, match bson.D, byStatus bool) ([]dsr.RequestCount, error) {
	key := bson.D{{Key: "type", Value: "$type"}, {Key: "regulation", Value: "$regulation"}}
	if byStatus {
		key = append(bson.D{{Key: "status", Value: "$status"}}, key...)
	}
	cur, err := s.reqs.Aggregate(ctx, bson.A{
		bson.D{{Key: "$match", Value: match}},
		bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: key}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
	})
	if err != nil {
		return nil, fmt.Errorf("count requests: %w", err)
	}
	var rows []struct {
		ID struct {
			Status     dsr.Status     `bson:"status"`
			Type       dsr.Type       `bson:"type"`
			Regulation dsr.Regulation `bson:"regulation"`
		} `bson:"_id"`
		N int64 `bson:"n"`
	}
	if err := cur.All(ctx, &rows); err != nil {
		return nil, fmt.Errorf("count requests: %w", err)
	}
	out := make([]dsr.RequestCount, len(rows))
	for i, r := range rows {
		out[i] = dsr.RequestCount{Status: r.ID.Status, Type: r.ID.Type, Regulation: r.ID.Regulation, N: r.N}
	}
	return out, nil
}

// epoch bounds the scans that start "from the beginning": no request or job
// of dsar predates it, and a range filter keeps them on an index.
var epoch = time.Unix(0, 0).UTC()

// EachCompletion calls fn for every completed request closed at or after
// since (zero: every one), oldest closing first, reading only the fields of
// [dsr.Completion]. Completed is final, so a request is reported once its
// closed_at is visible, and never withdrawn. The order lets a reader that
// stopped part way resume from the last closed_at it saw.
func (s *Store) EachCompletion(ctx context.Context, since time.Time, fn func(*dsr.Completion) error) error {
	filter := bson.D{
		{Key: "status", Value: dsr.StatusCompleted},
		{Key: "closed_at", Value: bson.D{{Key: "$gte", Value: later(since, epoch)}}},
	}
	proj := bson.D{{Key: "type", Value: 1}, {Key: "regulation", Value: 1}, {Key: "received_at", Value: 1}, {Key: "closed_at", Value: 1}}
	return scanSorted(ctx, s.reqs, filter, proj, bson.D{{Key: "closed_at", Value: 1}}, fn)
}

// EachJobOutcome calls fn for every job that finished (succeeded, failed
// or skipped) at or after since (zero: every one), oldest outcome first,
// reading only the fields of [dsr.JobOutcome]. A failed job an agent retries loses its finished_at
// until it finishes again, so it is reported again, with its new outcome.
func (s *Store) EachJobOutcome(ctx context.Context, since time.Time, fn func(*dsr.JobOutcome) error) error {
	filter := bson.D{{Key: "finished_at", Value: bson.D{{Key: "$gte", Value: later(since, epoch)}}}}
	proj := bson.D{{Key: "connector", Value: 1}, {Key: "action", Value: 1}, {Key: "status", Value: 1}, {Key: "created_at", Value: 1}, {Key: "finished_at", Value: 1}}
	return scanSorted(ctx, s.jobs, filter, proj, bson.D{{Key: "finished_at", Value: 1}}, func(j *dsr.JobOutcome) error {
		if !j.Status.Terminal() {
			return nil // a retried job whose finished_at was not cleared: not an outcome
		}
		return fn(j)
	})
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a.UTC()
	}
	return b.UTC()
}

// scan streams the projection proj of the documents matching filter to fn,
// 500 per round trip.
func scan[T any](ctx context.Context, c *collection, filter, proj bson.D, fn func(*T) error) error {
	return scanSorted(ctx, c, filter, proj, nil, fn)
}

// scanSorted is scan in the order of sort (nil: any).
func scanSorted[T any](ctx context.Context, c *collection, filter, proj, sort bson.D, fn func(*T) error) error {
	opts := options.Find().SetProjection(proj).SetBatchSize(500)
	if sort != nil {
		opts.SetSort(sort)
	}
	return stream(ctx, c, filter, opts, fn)
}

// Summary reports on the requests received in [from, to): one find on
// received_at, streaming only the fields it counts.
func (s *Store) Summary(ctx context.Context, from, to time.Time) (*dsr.Summary, error) {
	filter := bson.D{{Key: "received_at", Value: bson.D{{Key: "$gte", Value: from.UTC()}, {Key: "$lt", Value: to.UTC()}}}}
	proj := bson.D{
		{Key: "type", Value: 1}, {Key: "regulation", Value: 1}, {Key: "status", Value: 1},
		{Key: "received_at", Value: 1}, {Key: "due_at", Value: 1}, {Key: "closed_at", Value: 1},
		{Key: "denial_basis", Value: 1}, {Key: "paused_at", Value: 1},
	}
	var b dsr.SummaryBuilder
	b.Start(from, to, s.now())
	// Only the fields of proj are read (see [dsr.SummaryBuilder]).
	if err := scan(ctx, s.reqs, filter, proj, func(r *dsr.Request) error { b.Add(r); return nil }); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	return b.Finish(), nil
}
