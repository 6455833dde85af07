package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
)

// requestDoc is a request as stored: the domain's request and the counts
// of its jobs the store keeps beside it (as MongoDB does).
type requestDoc struct {
	dsr.Request `bson:",inline"`
	// JobsOpen and JobsFailed count the request's jobs not finished and
	// failed for good, from its fan-out on (see dsr.JobCounts).
	JobsOpen   int `bson:"jobs_open,omitempty"`
	JobsFailed int `bson:"jobs_failed,omitempty"`
}

// encode renders v as the document column holds it: relaxed Extended
// JSON of its bson form.
func encode(v any) (string, error) {
	b, err := bson.MarshalExtJSON(v, false, false)
	if err != nil {
		return "", fmt.Errorf("encode document: %w", err)
	}
	return string(b), nil
}

// decode reads a document column into v.
func decode(doc string, v any) error {
	if err := bson.UnmarshalExtJSON([]byte(doc), false, v); err != nil {
		return fmt.Errorf("decode document: %w", err)
	}
	return nil
}

// querier is what reads: the read pool or a write transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// execer is what writes: a write transaction.
type execer interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

const requestColumns = `status, type, regulation, source, assigned_to, appeal_of, received_at, due_at, updated_at,
	closed_at, paused_at, overdue_at, exports_purged_at, purged_at, fanned_out_at, audit_due, notices, reminded, doc`

// requestRow is the columns of d, in requestColumns' order, then its id.
func requestRow(d *requestDoc) ([]any, error) {
	doc, err := encode(d)
	if err != nil {
		return nil, err
	}
	r := &d.Request
	return []any{string(r.Status), string(r.Type), string(r.Regulation), r.Source, r.AssignedTo, r.AppealOf,
		ms(r.ReceivedAt), ms(r.DueAt), ms(r.UpdatedAt),
		msp(r.ClosedAt), msp(r.PausedAt), msp(r.OverdueAt), msp(r.ExportsPurgedAt), msp(r.PurgedAt), msp(r.FannedOutAt),
		r.AuditDue, len(r.PendingNotices), remindedColumn(r.Reminded), doc, r.ID}, nil
}

// remindedColumn is the reminded column of a request that was sent the
// reminders of days: each between commas (",7,2,"), so that a reminder is
// found sent by instr(reminded, ",7,") in the index, without the document.
func remindedColumn(days []int) string {
	if len(days) == 0 {
		return ""
	}
	var b strings.Builder
	for _, d := range days {
		fmt.Fprintf(&b, ",%d", d)
	}
	return b.String() + ","
}

// insertRequest stores a new request and its blind index; a unique
// violation when its id is taken.
func insertRequest(ctx context.Context, tx execer, d *requestDoc) error {
	row, err := requestRow(d)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO requests (`+requestColumns+`, id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, row...); err != nil {
		return err
	}
	return writeHashes(ctx, tx, d.ID, nil, nil, d.IdentityHashes, d.ProvenHashes)
}

// saveRequest writes d over the stored request, whose blind index was
// hashes and proven.
func saveRequest(ctx context.Context, tx execer, d *requestDoc, hashes, proven []string) error {
	row, err := requestRow(d)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE requests SET status=?, type=?, regulation=?, source=?, assigned_to=?, appeal_of=?,
		received_at=?, due_at=?, updated_at=?, closed_at=?, paused_at=?, overdue_at=?, exports_purged_at=?, purged_at=?,
		fanned_out_at=?, audit_due=?, notices=?, reminded=?, doc=? WHERE id=?`, row...)
	if err != nil {
		return err
	}
	return writeHashes(ctx, tx, d.ID, hashes, proven, d.IdentityHashes, d.ProvenHashes)
}

// writeHashes replaces a request's blind index rows when they changed.
func writeHashes(ctx context.Context, tx execer, id string, oldHashes, oldProven, hashes, proven []string) error {
	for p, pair := range [2][2][]string{{oldHashes, hashes}, {oldProven, proven}} {
		if slices.Equal(pair[0], pair[1]) {
			continue
		}
		if len(pair[0]) > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM request_hashes WHERE request_id = ? AND proven = ?`, id, p); err != nil {
				return err
			}
		}
		if len(pair[1]) == 0 {
			continue
		}
		args := make([]any, 0, 3*len(pair[1]))
		for _, h := range pair[1] {
			args = append(args, h, p, id)
		}
		values := strings.TrimSuffix(strings.Repeat("(?,?,?),", len(pair[1])), ",")
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO request_hashes (hash, proven, request_id) VALUES `+values, args...); err != nil {
			return err
		}
	}
	return nil
}

// loadRequest reads request id; dsr.ErrNotFound when there is none.
func loadRequest(ctx context.Context, q querier, id string) (*requestDoc, error) {
	var doc string
	err := q.QueryRowContext(ctx, `SELECT doc FROM requests WHERE id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("request %s: %w", id, dsr.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("find request: %w", err)
	}
	d := new(requestDoc)
	if err := decode(doc, d); err != nil {
		return nil, fmt.Errorf("request %s: %w", id, err)
	}
	return d, nil
}

// scanAll reads every row of rows, one document column each, into a slice.
func scanAll[T any](rows *sql.Rows, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var v T
		if err := decode(doc, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// batch is how many rows one read of an Each method takes.
const batch = 100

// eachDoc calls fn for each document a query returns, reading batch rows at
// a time by key (keyset paging: the query's last argument is the key to
// read after, and it returns key, doc ordered by key, LIMIT batch), so no
// read holds the file while fn writes.
func eachDoc[T any](ctx context.Context, q querier, query string, args []any, fn func(*T) error) error {
	after := ""
	for {
		rows, err := q.QueryContext(ctx, query, append(args, after)...)
		if err != nil {
			return err
		}
		type item struct {
			key string
			v   T
		}
		var page []item
		for rows.Next() {
			var it item
			var doc string
			if err := rows.Scan(&it.key, &doc); err != nil {
				rows.Close()
				return err
			}
			if err := decode(doc, &it.v); err != nil {
				rows.Close()
				return err
			}
			page = append(page, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range page {
			if err := fn(&page[i].v); err != nil {
				return err
			}
		}
		if len(page) < batch {
			return nil
		}
		after = page[len(page)-1].key
	}
}

// eachKeyed calls fn for each row of query (with args), read batch rows at
// a time in (col, id) order by keyset: query selects rows, filtered by its
// WHERE clause, whose first two columns are col and id; eachKeyed adds the
// key condition, the order and the limit. scan reads one row and returns
// its key. A page is read whole before fn sees it, so no read is open
// while fn writes. The store's errors are wrapped with what is read; fn's
// come back as they are.
func eachKeyed[T any](ctx context.Context, q querier, what, query, col string, args []any,
	scan func(*sql.Rows) (int64, string, *T, error), fn func(*T) error) error {
	return eachKeyedBy(ctx, q, batch, what, query, col, args, scan, fn)
}

// eachKeyedBy is eachKeyed reading n rows at a time.
func eachKeyedBy[T any](ctx context.Context, q querier, n int, what, query, col string, args []any,
	scan func(*sql.Rows) (int64, string, *T, error), fn func(*T) error) error {
	query += ` AND (` + col + `, id) > (?, ?) ORDER BY ` + col + `, id LIMIT ` + fmt.Sprint(n)
	var (
		at int64 = math.MinInt64
		id string
	)
	for {
		rows, err := q.QueryContext(ctx, query, append(args[:len(args):len(args)], at, id)...)
		if err != nil {
			return fmt.Errorf("scan %s: %w", what, err)
		}
		var page []*T
		for rows.Next() {
			var v *T
			at, id, v, err = scan(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("scan %s: %w", what, err)
			}
			page = append(page, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("scan %s: %w", what, err)
		}
		for _, v := range page {
			if err := fn(v); err != nil {
				return err
			}
		}
		if len(page) < n {
			return nil
		}
	}
}
