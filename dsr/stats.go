package dsr

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Statistics of the store, for the metrics (/metrics) and the compliance
// report (GET /v1/reports/summary, dsar report). They hold counts,
// durations, enums and connector names only, never a person's data.
//
// Every query is a filtered find with a projection, or a $match + $group
// ($sum) aggregate: what FerretDB v1 runs too. Each is served by an index of
// [Indexes] on MongoDB; FerretDB scans. Medians are computed in Go from a
// streamed projection ($percentile and $median are MongoDB 7 only and
// FerretDB has neither).

// RequestCount counts the requests of one status, type and regulation.
// Status is empty in counts that are not by status.
type RequestCount struct {
	Status     Status
	Type       Type
	Regulation Regulation
	N          int64
}

// CountRequests counts every request by status, type and regulation, in one
// aggregate. Its $match on status (every known status) lets MongoDB answer
// from the status_type_regulation index alone.
func (s *Store) CountRequests(ctx context.Context) ([]RequestCount, error) {
	match := bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: Statuses}}}}
	return s.countBy(ctx, match, true)
}

// CountOverdue counts, by type and regulation, the requests past their due
// date at now that are still to be answered (the statuses of
// [OverdueStatuses]), their clock running: a paused clock is not late.
func (s *Store) CountOverdue(ctx context.Context, now time.Time) ([]RequestCount, error) {
	match := bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: OverdueStatuses}}},
		{Key: "due_at", Value: bson.D{{Key: "$lt", Value: now.UTC()}}},
		{Key: "paused_at", Value: nil},
	}
	return s.countBy(ctx, match, false)
}

// JobCount counts the jobs of one connector and action.
type JobCount struct {
	Connector string
	Action    Action
	N         int64
}

// CountWaitingJobs counts, by connector and action, the jobs waiting on a
// remote system that finishes later, in one aggregate on the jobs'
// status_updated index.
func (s *Store) CountWaitingJobs(ctx context.Context) ([]JobCount, error) {
	cur, err := s.jobs.Aggregate(ctx, bson.A{
		bson.D{{Key: "$match", Value: bson.D{{Key: "status", Value: JobWaiting}}}},
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
			Connector string `bson:"connector"`
			Action    Action `bson:"action"`
		} `bson:"_id"`
		N int64 `bson:"n"`
	}
	if err := cur.All(ctx, &rows); err != nil {
		return nil, fmt.Errorf("count waiting jobs: %w", err)
	}
	out := make([]JobCount, len(rows))
	for i, r := range rows {
		out[i] = JobCount{Connector: r.ID.Connector, Action: r.ID.Action, N: r.N}
	}
	return out, nil
}

// countBy groups the requests matching match by type and regulation, and by
// status too when byStatus is set.
func (s *Store) countBy(ctx context.Context, match bson.D, byStatus bool) ([]RequestCount, error) {
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
			Status     Status     `bson:"status"`
			Type       Type       `bson:"type"`
			Regulation Regulation `bson:"regulation"`
		} `bson:"_id"`
		N int64 `bson:"n"`
	}
	if err := cur.All(ctx, &rows); err != nil {
		return nil, fmt.Errorf("count requests: %w", err)
	}
	out := make([]RequestCount, len(rows))
	for i, r := range rows {
		out[i] = RequestCount{Status: r.ID.Status, Type: r.ID.Type, Regulation: r.ID.Regulation, N: r.N}
	}
	return out, nil
}

// epoch bounds the scans that start "from the beginning": no request or job
// of dsar predates it, and a range filter keeps them on an index.
var epoch = time.Unix(0, 0).UTC()

// Completion is when a completed request was received and closed.
type Completion struct {
	ID         string     `bson:"_id"`
	Type       Type       `bson:"type"`
	Regulation Regulation `bson:"regulation"`
	ReceivedAt time.Time  `bson:"received_at"`
	ClosedAt   time.Time  `bson:"closed_at"`
}

// Days is the time from receipt to completion, in days.
func (c Completion) Days() float64 { return days(c.ClosedAt.Sub(c.ReceivedAt)) }

// EachCompletion calls fn for every completed request closed at or after
// since (zero: every one), oldest closing first, reading only the fields of
// [Completion]. Completed is final, so a request is reported once its
// closed_at is visible, and never withdrawn. The order lets a reader that
// stopped part way resume from the last closed_at it saw.
func (s *Store) EachCompletion(ctx context.Context, since time.Time, fn func(*Completion) error) error {
	filter := bson.D{
		{Key: "status", Value: StatusCompleted},
		{Key: "closed_at", Value: bson.D{{Key: "$gte", Value: later(since, epoch)}}},
	}
	proj := bson.D{{Key: "type", Value: 1}, {Key: "regulation", Value: 1}, {Key: "received_at", Value: 1}, {Key: "closed_at", Value: 1}}
	return scanSorted(ctx, s.reqs, filter, proj, bson.D{{Key: "closed_at", Value: 1}}, fn)
}

// JobOutcome is how a job ended, and when.
type JobOutcome struct {
	ID         string    `bson:"_id"`
	Connector  string    `bson:"connector"`
	Action     Action    `bson:"action"`
	Status     JobStatus `bson:"status"`
	CreatedAt  time.Time `bson:"created_at"`
	FinishedAt time.Time `bson:"finished_at"`
}

// EachJobOutcome calls fn for every job that finished (succeeded, failed
// or skipped) at or after since (zero: every one), oldest outcome first,
// reading only the fields of [JobOutcome]. A failed job an agent retries loses its finished_at
// until it finishes again, so it is reported again, with its new outcome.
func (s *Store) EachJobOutcome(ctx context.Context, since time.Time, fn func(*JobOutcome) error) error {
	filter := bson.D{{Key: "finished_at", Value: bson.D{{Key: "$gte", Value: later(since, epoch)}}}}
	proj := bson.D{{Key: "connector", Value: 1}, {Key: "action", Value: 1}, {Key: "status", Value: 1}, {Key: "created_at", Value: 1}, {Key: "finished_at", Value: 1}}
	return scanSorted(ctx, s.jobs, filter, proj, bson.D{{Key: "finished_at", Value: 1}}, func(j *JobOutcome) error {
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

// SummaryWindow parses the dates of a summary's window, YYYY-MM-DD each (UTC
// midnight): from inclusive, to exclusive. It reports every problem as a
// *ValidationError naming "from" or "to": a missing or malformed date, from
// not before to, or a window over two years.
func SummaryWindow(from, to string) (time.Time, time.Time, error) {
	var ve ValidationError
	parse := func(name, s string) (time.Time, bool) {
		if s == "" {
			ve.Add(name, "required: a date, YYYY-MM-DD (UTC)")
			return time.Time{}, false
		}
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			ve.Add(name, "must be a date, YYYY-MM-DD (UTC), e.g. 2026-01-01")
			return time.Time{}, false
		}
		return t, true
	}
	f, okFrom := parse("from", from)
	t, okTo := parse("to", to)
	if okFrom && okTo {
		switch {
		case !f.Before(t):
			ve.Add("to", "must be after from: the window is [from, to), to excluded")
		case t.After(f.AddDate(2, 0, 0)):
			ve.Add("to", "must be at most 2 years after from")
		}
	}
	return f, t, ve.Err()
}

// Summary is the compliance report of the requests received in a window: per
// type and regulation, how many were received and how they were answered
// (CCPA 11 CCR 7102(a)). Requests are counted by their received_at, in
// [From, To), in the status they have when the summary is made.
type Summary struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Rows has one entry per type and regulation with requests, by type
	// (access, deletion, opt_out) then regulation, in the order of [Types]
	// and [Regulations].
	Rows []SummaryRow `json:"rows"`
	// Total sums every row; its medians and means are over all requests.
	Total       SummaryRow `json:"total"`
	GeneratedAt time.Time  `json:"generated_at"`
}

// SummaryRow holds the figures of one type and regulation (both empty in
// the total).
type SummaryRow struct {
	Type       Type       `json:"type,omitempty"`
	Regulation Regulation `json:"regulation,omitempty"`
	// Received counts every request received in the window; it is the sum
	// of Completed, Denied, Open, Cancelled and Expired.
	Received  int `json:"received"`
	Completed int `json:"completed"`
	Denied    int `json:"denied"`
	// DeniedByBasis counts the denied requests by the basis of their
	// denial, every basis of [DenialBases] present (11 CCR
	// 7102(a)(1)(D)); a denial recorded without one counts as other.
	DeniedByBasis map[DenialBasis]int `json:"denied_by_basis"`
	// Open counts the requests still to be answered, duplicates included,
	// and Overdue those of them past their due date when the summary is
	// made, their clock running.
	Open      int `json:"open"`
	Overdue   int `json:"overdue"`
	Cancelled int `json:"cancelled"`
	Expired   int `json:"expired"`
	// Responded counts the requests answered (completed or denied), and
	// OnTime those of them closed no later than their (extended) due date.
	Responded int `json:"responded"`
	OnTime    int `json:"on_time"`
	// MedianDays and MeanDays are the days from receipt to response of the
	// requests answered, to 0.01 day; OnTimeRate is OnTime / Responded, to
	// 0.0001. Each is nil when none was answered.
	MedianDays *float64 `json:"median_days"`
	MeanDays   *float64 `json:"mean_days"`
	OnTimeRate *float64 `json:"on_time_rate"`

	days []float64
}

// summaryDoc is what a summary reads of a request.
type summaryDoc struct {
	Type       Type       `bson:"type"`
	Regulation Regulation `bson:"regulation"`
	Status     Status     `bson:"status"`
	ReceivedAt time.Time  `bson:"received_at"`
	DueAt      time.Time  `bson:"due_at"`
	ClosedAt   *time.Time `bson:"closed_at"`
	// DenialBasis is why a denied request was denied.
	DenialBasis DenialBasis `bson:"denial_basis"`
	PausedAt    *time.Time  `bson:"paused_at"`
}

// Summary reports on the requests received in [from, to): one find on
// received_at, streaming only the fields it counts.
func (s *Store) Summary(ctx context.Context, from, to time.Time) (*Summary, error) {
	filter := bson.D{{Key: "received_at", Value: bson.D{{Key: "$gte", Value: from.UTC()}, {Key: "$lt", Value: to.UTC()}}}}
	proj := bson.D{
		{Key: "type", Value: 1}, {Key: "regulation", Value: 1}, {Key: "status", Value: 1},
		{Key: "received_at", Value: 1}, {Key: "due_at", Value: 1}, {Key: "closed_at", Value: 1},
		{Key: "denial_basis", Value: 1}, {Key: "paused_at", Value: 1},
	}
	type key struct {
		t Type
		r Regulation
	}
	rows := map[key]*SummaryRow{}
	total := &SummaryRow{}
	now := s.now()
	err := scan(ctx, s.reqs, filter, proj, func(d *summaryDoc) error {
		k := key{d.Type, d.Regulation}
		row := rows[k]
		if row == nil {
			row = &SummaryRow{Type: d.Type, Regulation: d.Regulation}
			rows[k] = row
		}
		row.add(d, now)
		total.add(d, now)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	sum := &Summary{From: from.UTC(), To: to.UTC(), Rows: []SummaryRow{}, GeneratedAt: now}
	for _, row := range rows {
		row.finish()
		sum.Rows = append(sum.Rows, *row)
	}
	slices.SortFunc(sum.Rows, func(a, b SummaryRow) int {
		if c := order(Types, a.Type) - order(Types, b.Type); c != 0 {
			return c
		}
		if c := order(Regulations, a.Regulation) - order(Regulations, b.Regulation); c != 0 {
			return c
		}
		return cmp.Compare(string(a.Type)+" "+string(a.Regulation), string(b.Type)+" "+string(b.Regulation))
	})
	total.finish()
	sum.Total = *total
	return sum, nil
}

// order is the place of v in list, or past its end when v is unknown.
func order[T comparable](list []T, v T) int {
	if i := slices.Index(list, v); i >= 0 {
		return i
	}
	return len(list)
}

// add counts one request, as it is at now.
func (r *SummaryRow) add(d *summaryDoc, now time.Time) {
	r.Received++
	switch d.Status {
	case StatusCompleted:
		r.Completed++
	case StatusDenied:
		r.Denied++
		basis := d.DenialBasis
		if !slices.Contains(DenialBases, basis) {
			basis = DeniedOther // recorded before bases were, or unknown to this version
		}
		if r.DeniedByBasis == nil {
			r.DeniedByBasis = map[DenialBasis]int{}
		}
		r.DeniedByBasis[basis]++
	case StatusCancelled:
		r.Cancelled++
	case StatusExpired:
		r.Expired++
	default: // open, duplicate, or a status this version does not know
		r.Open++
		if d.DueAt.Before(now) && d.PausedAt == nil {
			r.Overdue++
		}
	}
	if (d.Status == StatusCompleted || d.Status == StatusDenied) && d.ClosedAt != nil {
		r.Responded++
		if !d.ClosedAt.After(d.DueAt) {
			r.OnTime++
		}
		r.days = append(r.days, days(d.ClosedAt.Sub(d.ReceivedAt)))
	}
}

// finish computes the median, the mean and the on-time rate.
func (r *SummaryRow) finish() {
	if r.DeniedByBasis == nil {
		r.DeniedByBasis = map[DenialBasis]int{}
	}
	for _, b := range DenialBases {
		r.DeniedByBasis[b] += 0 // every basis present, zero or not
	}
	if len(r.days) == 0 {
		return
	}
	median, mean := Median(r.days), 0.0
	for _, d := range r.days {
		mean += d
	}
	mean /= float64(len(r.days))
	rate := float64(r.OnTime) / float64(r.Responded)
	median, mean, rate = round(median, 100), round(mean, 100), round(rate, 10000)
	r.MedianDays, r.MeanDays, r.OnTimeRate = &median, &mean, &rate
	r.days = nil
}

// Median returns the median of xs (the mean of the middle two of an even
// count), sorting xs in place; 0 for none.
func Median(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return 0
	}
	slices.Sort(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

func days(d time.Duration) float64 { return d.Hours() / 24 }

func round(x, scale float64) float64 { return math.Round(x*scale) / scale }
