package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// CountRequests counts every request by status, type and regulation, in
// one query answered from the requests_status_type_regulation index alone
// (its status condition, every known status, is the one MongoDB's counts
// have).
func (s *Store) CountRequests(ctx context.Context) ([]dsr.RequestCount, error) {
	args := statusArgs(dsr.Statuses)
	return s.countBy(ctx, `SELECT status, type, regulation, COUNT(*) FROM requests WHERE status IN (`+placeholders(len(args))+`)
		GROUP BY status, type, regulation`, args, true)
}

// CountOverdue counts, by type and regulation, the requests past their due
// date at now that are still to be answered (the statuses of
// [dsr.OverdueStatuses]), their clock running: a paused clock is not late.
func (s *Store) CountOverdue(ctx context.Context, now time.Time) ([]dsr.RequestCount, error) {
	args := statusArgs(dsr.OverdueStatuses)
	return s.countBy(ctx, `SELECT type, regulation, COUNT(*) FROM requests WHERE status IN (`+placeholders(len(args))+`)
		AND due_at < ? AND paused_at IS NULL GROUP BY type, regulation`, append(args, ms(now)), false)
}

// statusArgs is statuses as query arguments.
func statusArgs(statuses []dsr.Status) []any {
	args := make([]any, len(statuses))
	for i, st := range statuses {
		args[i] = string(st)
	}
	return args
}

// countBy runs a count of requests grouped by type and regulation (and
// first by status when byStatus is set), the count last.
func (s *Store) countBy(ctx context.Context, query string, args []any, byStatus bool) ([]dsr.RequestCount, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("count requests: %w", err)
	}
	defer rows.Close()
	out := []dsr.RequestCount{}
	for rows.Next() {
		var c dsr.RequestCount
		dest := []any{&c.Type, &c.Regulation, &c.N}
		if byStatus {
			dest = append([]any{&c.Status}, dest...)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("count requests: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count requests: %w", err)
	}
	return out, nil
}

// CountWaitingJobs counts, by connector and action, the jobs waiting on a
// remote system that finishes later, in one query answered from the
// jobs_status_connector_action index alone.
func (s *Store) CountWaitingJobs(ctx context.Context) ([]dsr.JobCount, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT connector, action, COUNT(*) FROM jobs WHERE status = ? GROUP BY connector, action`, string(dsr.JobWaiting))
	if err != nil {
		return nil, fmt.Errorf("count waiting jobs: %w", err)
	}
	defer rows.Close()
	out := []dsr.JobCount{}
	for rows.Next() {
		var c dsr.JobCount
		if err := rows.Scan(&c.Connector, &c.Action, &c.N); err != nil {
			return nil, fmt.Errorf("count waiting jobs: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count waiting jobs: %w", err)
	}
	return out, nil
}

// epoch bounds the scans that start "from the beginning": no request or job
// of dsar predates it.
var epoch = time.Unix(0, 0).UTC()

// later is the later of a and b, in UTC.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a.UTC()
	}
	return b.UTC()
}

// utcMs is the time of Unix milliseconds t, in UTC.
func utcMs(t int64) time.Time { return time.UnixMilli(t).UTC() }

// EachCompletion calls fn for every completed request closed at or after
// since (zero: every one), oldest closing first (then by id), reading only
// the columns of [dsr.Completion], 100 at a time. Completed is final, so a
// request is reported once its closing is visible, and never withdrawn. The
// order lets a reader that stopped part way resume from the last closed_at
// it saw.
func (s *Store) EachCompletion(ctx context.Context, since time.Time, fn func(*dsr.Completion) error) error {
	// The key is the only bound on closed_at (eachKeyedFrom): with its
	// own bound too, each page would walk the index from since again.
	return eachKeyedFrom(ctx, s.r, batch, "completions", `SELECT closed_at, id, type, regulation, received_at FROM requests
		WHERE status = ?`, "closed_at", []any{string(dsr.StatusCompleted)}, ms(later(since, epoch)),
		func(rows *sql.Rows) (int64, string, *dsr.Completion, error) {
			var (
				c                dsr.Completion
				closed, received int64
			)
			if err := rows.Scan(&closed, &c.ID, &c.Type, &c.Regulation, &received); err != nil {
				return 0, "", nil, err
			}
			c.ClosedAt, c.ReceivedAt = utcMs(closed), utcMs(received)
			return closed, c.ID, &c, nil
		}, fn)
}

// EachJobOutcome calls fn for every job that finished (succeeded, failed
// or skipped) at or after since (zero: every one), oldest outcome first
// (then by id), reading only the columns of [dsr.JobOutcome], 100 at a
// time. A failed job an agent retries loses its finished_at until it
// finishes again, so it is reported again, with its new outcome.
func (s *Store) EachJobOutcome(ctx context.Context, since time.Time, fn func(*dsr.JobOutcome) error) error {
	// The key is the only bound on finished_at (eachKeyedFrom), as in
	// EachCompletion.
	return eachKeyedFrom(ctx, s.r, batch, "job outcomes", `SELECT finished_at, id, connector, action, status, created_at FROM jobs
		WHERE finished_at IS NOT NULL`, "finished_at", nil, ms(later(since, epoch)),
		func(rows *sql.Rows) (int64, string, *dsr.JobOutcome, error) {
			var (
				o                 dsr.JobOutcome
				finished, created int64
			)
			if err := rows.Scan(&finished, &o.ID, &o.Connector, &o.Action, &o.Status, &created); err != nil {
				return 0, "", nil, err
			}
			o.FinishedAt, o.CreatedAt = utcMs(finished), utcMs(created)
			return finished, o.ID, &o, nil
		}, func(o *dsr.JobOutcome) error {
			if !o.Status.Terminal() {
				return nil // a retried job whose finished_at was not cleared: not an outcome
			}
			return fn(o)
		})
}

// Summary reports on the requests received in [from, to): one query on
// received_at, streaming only the columns it counts (see
// [dsr.SummaryBuilder]).
func (s *Store) Summary(ctx context.Context, from, to time.Time) (*dsr.Summary, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT type, regulation, status, received_at, due_at, closed_at,
		coalesce(json_extract(doc, '$.denial_basis'), ''), paused_at
		FROM requests WHERE received_at >= ? AND received_at < ?`, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	defer rows.Close()
	var b dsr.SummaryBuilder
	b.Start(from, to, s.now())
	for rows.Next() {
		var (
			r              dsr.Request
			received, due  int64
			closed, paused sql.NullInt64
		)
		if err := rows.Scan(&r.Type, &r.Regulation, &r.Status, &received, &due, &closed, &r.DenialBasis, &paused); err != nil {
			return nil, fmt.Errorf("summary: %w", err)
		}
		r.ReceivedAt, r.DueAt = utcMs(received), utcMs(due)
		r.ClosedAt, r.PausedAt = nullTime(closed), nullTime(paused)
		b.Add(&r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	return b.Finish(), nil
}

// nullTime is the time of a nullable Unix milliseconds column, or nil.
func nullTime(t sql.NullInt64) *time.Time {
	if !t.Valid {
		return nil
	}
	v := utcMs(t.Int64)
	return &v
}
