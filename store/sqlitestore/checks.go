package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// The queries of the deadline checks. Each names its partial index
// (schema.go; SQLite keeps no statistics, and would rather take a wider
// one) and repeats its conditions word for word, which SQLite requires to
// use it. The index holds only the requests a check may still want: a
// request leaves it once acted on (marked overdue, its clock paused,
// closed, purged), so a run with nothing to do examines nothing. Each
// selects its key, the id and the due date, and is read in (key, id)
// order by eachKeyed, batch after batch.
const (
	// toRemindQuery (requests_checks_due): due in [from, to) and without
	// reminder n. The requests of the window that had the reminder are
	// examined in the index and skipped, as on MongoDB.
	toRemindQuery = `SELECT due_at, id, due_at FROM requests INDEXED BY requests_checks_due
		WHERE overdue_at IS NULL AND paused_at IS NULL AND status IN ` + openStatusesSQL + `
		AND due_at >= ? AND due_at < ?
		AND instr(reminded, ?) = 0`
	// toEscalateQuery (requests_checks_due): due before now.
	toEscalateQuery = `SELECT due_at, id, due_at FROM requests INDEXED BY requests_checks_due
		WHERE overdue_at IS NULL AND paused_at IS NULL AND status IN ` + openStatusesSQL + `
		AND due_at < ?`
	// exportsToPurgeQuery (requests_checks_exports): access requests
	// closed before t.
	exportsToPurgeQuery = `SELECT closed_at, id, due_at FROM requests INDEXED BY requests_checks_exports
		WHERE exports_purged_at IS NULL AND type = 'access' AND status IN ` + closedStatusesSQL + `
		AND closed_at < ?`
	// identitiesToPurgeQuery (requests_checks_identities): closed before t.
	identitiesToPurgeQuery = `SELECT closed_at, id, due_at FROM requests INDEXED BY requests_checks_identities
		WHERE purged_at IS NULL AND status IN ` + closedStatusesSQL + `
		AND closed_at < ?`

	// purgeExportsQuery deletes a request's exported records
	// (export_records_request).
	purgeExportsQuery = `DELETE FROM export_records WHERE request_id = ?`
	// purgeJobIdentitiesQuery removes the identities the finished jobs of a
	// request carry (jobs_request_id); a job still to run keeps them. It
	// edits the document in place, leaving every other field as written.
	// The answers they hold (dsr.Job.Answer, normally cleared when a job
	// ends) go with them: they may hold personal data.
	purgeJobIdentitiesQuery = `UPDATE jobs SET doc = json_remove(doc, '$.identities', '$.answer', '$.answered_at')
		WHERE request_id = ? AND status IN ('succeeded','failed','skipped')
		AND (json_type(doc, '$.identities') IS NOT NULL OR json_type(doc, '$.answer') IS NOT NULL)`
)

// EachToRemind calls fn for every open request, its clock running and not
// overdue, due in [from, to) that has not had the reminder n days before
// its due date. It reads in batches; fn may write.
func (s *Store) EachToRemind(ctx context.Context, from, to time.Time, n int, fn func(*dsr.Due) error) error {
	return s.eachDue(ctx, toRemindQuery, "due_at", []any{ms(from), ms(to), remindedColumn([]int{n})}, fn)
}

// EachToEscalate calls fn for every open request, its clock running, due
// before now and not marked overdue yet. It reads in batches; fn may write.
func (s *Store) EachToEscalate(ctx context.Context, now time.Time, fn func(*dsr.Due) error) error {
	return s.eachDue(ctx, toEscalateQuery, "due_at", []any{ms(now)}, fn)
}

// EachExportsToPurge calls fn with every access request closed before t
// whose exported data is still kept.
func (s *Store) EachExportsToPurge(ctx context.Context, t time.Time, fn func(*dsr.Due) error) error {
	return s.eachDue(ctx, exportsToPurgeQuery, "closed_at", []any{ms(t)}, fn)
}

// EachIdentitiesToPurge calls fn with every request closed before t whose
// clear identities are still kept.
func (s *Store) EachIdentitiesToPurge(ctx context.Context, t time.Time, fn func(*dsr.Due) error) error {
	return s.eachDue(ctx, identitiesToPurgeQuery, "closed_at", []any{ms(t)}, fn)
}

// eachDue calls fn for each request a check's query (with args) returns,
// in (col, id) order, col being the query's key.
func (s *Store) eachDue(ctx context.Context, query, col string, args []any, fn func(*dsr.Due) error) error {
	return eachKeyed(ctx, s.r, "deadline check", query, col, args, func(rows *sql.Rows) (int64, string, *dsr.Due, error) {
		var (
			key, due int64
			d        dsr.Due
		)
		if err := rows.Scan(&key, &d.ID, &due); err != nil {
			return 0, "", nil, err
		}
		d.DueAt = time.UnixMilli(due).UTC()
		return key, d.ID, &d, nil
	}, fn)
}

// Remind records that the reminder n days before its due date is due for
// request id, in one transaction that checks the conditions of
// [Store.EachToRemind] again (open, clock running, not overdue, due in
// [from, to)): it returns false when it was recorded before, or the request
// changed since it was read (closed, paused, extended), so a check run
// twice reminds once and never for a due date that moved.
func (s *Store) Remind(ctx context.Context, id string, n int, from, to time.Time) (bool, error) {
	_, err := s.update(ctx, id, func(d *requestDoc) error {
		due := ms(d.DueAt)
		if slices.Contains(d.Reminded, n) || !slices.Contains(dsr.OverdueStatuses, d.Status) ||
			due < ms(from) || due >= ms(to) || d.PausedAt != nil || d.OverdueAt != nil {
			return errNoChange
		}
		d.Reminded = append(d.Reminded, n)
		addNotice(d, dsr.AlertReminder(n))
		return nil
	})
	return changed("remind", err)
}

// Escalate marks request id overdue, in one transaction that checks the
// conditions of [Store.EachToEscalate] again (open, clock running, due
// before now, not marked), and makes its overdue alert due; false when it
// was marked before or changed since it was read.
func (s *Store) Escalate(ctx context.Context, id string, now time.Time) (bool, error) {
	_, err := s.update(ctx, id, func(d *requestDoc) error {
		if d.OverdueAt != nil || !slices.Contains(dsr.OverdueStatuses, d.Status) || ms(d.DueAt) >= ms(now) || d.PausedAt != nil {
			return errNoChange
		}
		at := s.now()
		d.OverdueAt = &at
		addNotice(d, dsr.AlertOverdue)
		return nil
	})
	return changed("escalate", err)
}

// PurgeExports deletes the exported data of a request and records when, in
// one transaction; it returns false when it was purged before (or there is
// no such request).
func (s *Store) PurgeExports(ctx context.Context, id string) (bool, error) {
	return s.purge(ctx, "purge exports", purgeExportsQuery, id, func(d *requestDoc) error {
		if d.ExportsPurgedAt != nil {
			return errNoChange
		}
		now := s.now()
		d.ExportsPurgedAt, d.ExportKey = &now, ""
		return nil
	})
}

// PurgeIdentities removes the clear identities (and an agent's details and
// note, and a correction's new values) of a closed request, and the copies its finished jobs carry, in
// one transaction, keeping its blind index, history and audit chain as
// evidence; false when they were purged before, or the request is open.
// The finished jobs' copies go whatever the request's state, as on MongoDB.
func (s *Store) PurgeIdentities(ctx context.Context, id string) (bool, error) {
	return s.purge(ctx, "purge identities", purgeJobIdentitiesQuery, id, func(d *requestDoc) error {
		if d.PurgedAt != nil || !slices.Contains(dsr.ClosedStatuses, d.Status) {
			return errNoChange
		}
		now := s.now()
		d.Identities, d.PurgedAt, d.Note, d.Agent, d.NewValues, d.DataKey = []dsr.Identity{}, &now, "", nil, nil, ""
		return nil
	})
}

// purge runs first (a statement on request id's other rows, which stands
// whatever follows), then updates request id with fn, in one transaction;
// false when fn had nothing to do or there is no such request.
func (s *Store) purge(ctx context.Context, what, first, id string, fn func(d *requestDoc) error) (bool, error) {
	var done bool
	err := s.write(ctx, func(tx *wtx) error {
		if _, err := tx.ExecContext(ctx, first, id); err != nil {
			return err
		}
		_, err := s.updateIn(ctx, tx, id, fn)
		if errors.Is(err, errNoChange) || errors.Is(err, dsr.ErrNotFound) {
			return nil
		}
		done = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return done, nil
}

// changed is the answer of a check's update: true when it wrote, false
// when it had nothing to do or there is no such request.
func changed(what string, err error) (bool, error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errNoChange), errors.Is(err, dsr.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("%s: %w", what, err)
}

// addNotice makes notice due to d's subject, once.
func addNotice(d *requestDoc, notice string) {
	if !slices.Contains(d.PendingNotices, notice) {
		d.PendingNotices = append(d.PendingNotices, notice)
	}
}
