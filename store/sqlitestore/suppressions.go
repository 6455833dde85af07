package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

// suppressBatch is how many entries (or hashes) one write transaction of
// Suppress (or LiftSuppressions) takes.
const suppressBatch = 500

// changeBatch is how many entries one read of the change feed takes: a
// checker reads the whole list at start-up.
const changeBatch = 1000

// liftBatch is how many hashes one write of LiftSuppressions carries: a
// person's (the application names at most 100 at a time). Small, because
// FerretDB v1 compares every document of the collection with every hash
// of a command.
const liftBatch = 100

// suppressionColumns are the columns of a suppression entry, in
// scanSuppression's order.
const suppressionColumns = `id, hash, scope, source, request_id, partner, at, lifted_at, lifted_by, lift_reason, updated_at`

// suppressQuery stores n entries (its VALUES are appended): a new one is
// inserted, a lifted one made active again as the new one says, an active
// one left as it is (the DO UPDATE's WHERE). SQLite counts the rows
// inserted or updated, not those the WHERE left.
const suppressQuery = `INSERT INTO suppressions (` + suppressionColumns + `) VALUES `

const suppressConflict = ` ON CONFLICT (id) DO UPDATE SET source = excluded.source, request_id = excluded.request_id,
	partner = excluded.partner, at = excluded.at, lifted_at = NULL, lifted_by = '', lift_reason = '',
	updated_at = excluded.updated_at
	WHERE lifted_at IS NOT NULL`

// Suppress records entries, suppressBatch per write transaction: a new
// entry is created, a lifted one made active again (its source, request,
// partner and At replaced, its lift cleared), an active one left as it is.
// What it creates or re-activates gets UpdatedAt = now. It returns how many
// entries it created or re-activated; on an error, how many it had before
// (the batches written stay: Suppress is idempotent, so a retry finishes
// the job).
func (s *Store) Suppress(ctx context.Context, entries []dsr.Suppression) (int, error) {
	if err := store.CheckSuppressions(entries); err != nil {
		return 0, err
	}
	total := 0
	for part := range slices.Chunk(entries, suppressBatch) {
		var n int64
		err := s.write(ctx, func(tx *wtx) error {
			now := ms(s.now())
			args := make([]any, 0, 8*len(part))
			for _, e := range part {
				args = append(args, dsr.SuppressionID(e.Hash, e.Scope), e.Hash, string(e.Scope), string(e.Source),
					e.RequestID, e.Partner, ms(e.At), now)
			}
			values := strings.TrimSuffix(strings.Repeat(`(?,?,?,?,?,?,?,NULL,'','',?),`, len(part)), ",")
			res, err := tx.ExecContext(ctx, suppressQuery+values+suppressConflict, args...)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("suppress: %w", err)
		}
		total += int(n)
	}
	return total, nil
}

// liftQuery lifts the active entries whose ids a JSON array holds.
const liftQuery = `UPDATE suppressions SET lifted_at = ?, lifted_by = ?, lift_reason = ?, updated_at = ?
	WHERE id IN (SELECT value FROM json_each(?)) AND lifted_at IS NULL`

// LiftSuppressions lifts the active entries of hashes under exactly scope,
// liftBatch hashes per write transaction, and returns how many it
// lifted.
func (s *Store) LiftSuppressions(ctx context.Context, hashes []string, scope dsr.Scope, by, reason string) (int, error) {
	total := 0
	for part := range slices.Chunk(hashes, liftBatch) {
		ids := make([]string, len(part))
		for i, h := range part {
			ids[i] = dsr.SuppressionID(h, scope)
		}
		js, err := json.Marshal(ids)
		if err != nil {
			return total, fmt.Errorf("lift suppressions: %w", err)
		}
		var n int64
		err = s.write(ctx, func(tx *wtx) error {
			now := ms(s.now())
			res, err := tx.ExecContext(ctx, liftQuery, now, by, reason, now, string(js))
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("lift suppressions: %w", err)
		}
		total += int(n)
	}
	return total, nil
}

// suppressionsQuery reads the entries whose ids a JSON array holds, by the
// unique index on id.
const suppressionsQuery = `SELECT ` + suppressionColumns + ` FROM suppressions WHERE id IN (SELECT value FROM json_each(?))`

// Suppressions returns every entry of hashes, active or lifted: those of
// each hash under each scope (dsr.Scopes), by id.
func (s *Store) Suppressions(ctx context.Context, hashes []string) ([]dsr.Suppression, error) {
	if len(hashes) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(hashes)*len(dsr.Scopes))
	for _, h := range hashes {
		for _, sc := range dsr.Scopes {
			ids = append(ids, dsr.SuppressionID(h, sc))
		}
	}
	js, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("read suppressions: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, suppressionsQuery, string(js))
	if err != nil {
		return nil, fmt.Errorf("read suppressions: %w", err)
	}
	defer rows.Close()
	var out []dsr.Suppression
	for rows.Next() {
		e, err := scanSuppression(rows)
		if err != nil {
			return nil, fmt.Errorf("read suppressions: %w", err)
		}
		out = append(out, *e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read suppressions: %w", err)
	}
	return out, nil
}

// scanSuppression reads one row of suppressionColumns.
func scanSuppression(rows *sql.Rows) (*dsr.Suppression, error) {
	var (
		e                 dsr.Suppression
		at, updated       int64
		lifted            sql.NullInt64
		scope, source     string
		liftedBy, liftWhy string
	)
	if err := rows.Scan(&e.ID, &e.Hash, &scope, &source, &e.RequestID, &e.Partner, &at, &lifted, &liftedBy, &liftWhy, &updated); err != nil {
		return nil, err
	}
	e.Scope, e.Source, e.LiftedBy, e.LiftReason = dsr.Scope(scope), dsr.ConsentSource(source), liftedBy, liftWhy
	e.At, e.UpdatedAt = utcMs(at), utcMs(updated)
	if lifted.Valid {
		t := utcMs(lifted.Int64)
		e.LiftedAt = &t
	}
	return &e, nil
}

// changesQuery is one page of the change feed: the entries after a key
// (updated_at, id), in that order, on the suppressions_updated_id index.
// The key alone bounds the range: the feed starts after (since, ""), which
// every entry updated at since or later follows (no id is empty). (A
// separate updated_at >= ? would be taken as the range instead, and each
// page would walk the index from since again.)
const changesQuery = `SELECT ` + suppressionColumns + ` FROM suppressions
	WHERE (updated_at, id) > (?, ?) ORDER BY updated_at, id LIMIT ?`

// EachSuppressionChange calls fn for every entry updated at since or
// later, in (UpdatedAt, ID) order, changeBatch entries per read; a page
// is read whole before fn sees it, so no read is open while fn runs.
func (s *Store) EachSuppressionChange(ctx context.Context, since time.Time, fn func(*dsr.Suppression) error) error {
	at, id := ms(since), ""
	page := make([]*dsr.Suppression, 0, changeBatch)
	for {
		rows, err := s.r.QueryContext(ctx, changesQuery, at, id, changeBatch)
		if err != nil {
			return fmt.Errorf("scan suppression changes: %w", err)
		}
		page = page[:0]
		for rows.Next() {
			e, err := scanSuppression(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("scan suppression changes: %w", err)
			}
			page = append(page, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("scan suppression changes: %w", err)
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(page) < changeBatch {
			return nil
		}
		last := page[len(page)-1]
		at, id = ms(last.UpdatedAt), last.ID
	}
}

// insertSuppression stores entry e as it is (a copy), unless its id is
// taken, and reports whether it stored it.
func insertSuppression(ctx context.Context, tx execer, e *dsr.Suppression) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO suppressions (`+suppressionColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`,
		e.ID, e.Hash, string(e.Scope), string(e.Source), e.RequestID, e.Partner, ms(e.At), msp(e.LiftedAt), e.LiftedBy, e.LiftReason, ms(e.UpdatedAt))
	return inserted(res, err)
}

// AddConsentEvents stores events in one write transaction, each with a
// row per hash it concerns; an event whose ID is stored already is
// skipped, hashes and all.
func (s *Store) AddConsentEvents(ctx context.Context, events []dsr.ConsentEvent) error {
	if len(events) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *wtx) error {
		for i := range events {
			if _, err := insertConsentEvent(ctx, tx, &events[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add consent events: %w", err)
	}
	return nil
}

// insertConsentEvent stores e and its hash rows unless its ID is taken, and
// reports whether it stored it.
func insertConsentEvent(ctx context.Context, tx execer, e *dsr.ConsentEvent) (bool, error) {
	doc, err := encode(e)
	if err != nil {
		return false, err
	}
	ok, err := inserted(tx.ExecContext(ctx, `INSERT INTO consent_events (id, at, doc) VALUES (?,?,?) ON CONFLICT DO NOTHING`, e.ID, ms(e.At), doc))
	if err != nil || !ok || len(e.Hashes) == 0 {
		return ok, err
	}
	args := make([]any, 0, 3*len(e.Hashes))
	for _, h := range e.Hashes {
		args = append(args, h, ms(e.At), e.ID)
	}
	values := strings.TrimSuffix(strings.Repeat("(?,?,?),", len(e.Hashes)), ",")
	_, err = tx.ExecContext(ctx, `INSERT OR IGNORE INTO consent_hashes (hash, at, event_id) VALUES `+values, args...)
	return true, err
}

// historyQuery reads the events of the hashes of a JSON array (the
// consent_hashes primary key finds them, each event once), oldest first.
// One person's events are sorted.
const historyQuery = `SELECT doc FROM consent_events
	WHERE id IN (SELECT event_id FROM consent_hashes WHERE hash IN (SELECT value FROM json_each(?)))
	ORDER BY at, id LIMIT ?`

// ConsentHistory returns the events that concern any of hashes, oldest
// first (At, then ID), at most limit of them.
func (s *Store) ConsentHistory(ctx context.Context, hashes []string, limit int) ([]dsr.ConsentEvent, error) {
	if len(hashes) == 0 || limit <= 0 {
		return nil, nil
	}
	js, err := json.Marshal(hashes)
	if err != nil {
		return nil, fmt.Errorf("consent history: %w", err)
	}
	out, err := scanAll[dsr.ConsentEvent](s.r.QueryContext(ctx, historyQuery, string(js), limit))
	if err != nil {
		return nil, fmt.Errorf("consent history: %w", err)
	}
	return out, nil
}

// AddRemovals stores removals in one write transaction; one whose ID is
// stored already is skipped.
func (s *Store) AddRemovals(ctx context.Context, removals []dsr.Removal) error {
	if len(removals) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *wtx) error {
		for i := range removals {
			if _, err := insertRemoval(ctx, tx, &removals[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add removals: %w", err)
	}
	return nil
}

// insertRemoval stores r unless its ID is taken, and reports whether it
// stored it.
func insertRemoval(ctx context.Context, tx execer, r *dsr.Removal) (bool, error) {
	doc, err := encode(r)
	if err != nil {
		return false, err
	}
	return inserted(tx.ExecContext(ctx, `INSERT INTO segment_removals (id, at, doc) VALUES (?,?,?) ON CONFLICT DO NOTHING`, r.ID, ms(r.At), doc))
}

// EachRemoval calls fn for every removal with from <= At < to, in (At, ID)
// order, reading by (at, id) pages on the segment_removals_at_id index.
func (s *Store) EachRemoval(ctx context.Context, from, to time.Time, fn func(*dsr.Removal) error) error {
	return eachKeyedFrom(ctx, s.r, batch, "removals", `SELECT at, id, doc FROM segment_removals WHERE at < ?`, "at",
		[]any{ms(to)}, ms(from), func(rows *sql.Rows) (int64, string, *dsr.Removal, error) {
			var (
				at  int64
				id  string
				doc string
			)
			if err := rows.Scan(&at, &id, &doc); err != nil {
				return 0, "", nil, err
			}
			r := new(dsr.Removal)
			if err := decode(doc, r); err != nil {
				return 0, "", nil, err
			}
			return at, id, r, nil
		}, fn)
}
