package sqlitestore

import (
	"context"
	"fmt"
	"strings"

	"github.com/dsar-project/dsar/dsr"
)

// ListRequests returns up to f.Limit requests in f.Sort order and the cursor
// of the last when more follow (it reads one more than f.Limit to know).
// Pages are keyset pages: a page starts after the cursor, so a page costs
// the same however deep. Each filter leads an index that continues with the
// sort (status, type, regulation, source and assignee each with (due_at,
// id) and with id; the overdue list has its own partial index), so a page
// reads about f.Limit rows.
func (s *Store) ListRequests(ctx context.Context, f dsr.ListFilter) ([]dsr.Request, *dsr.Cursor, error) {
	q, args, ok := listQuery(f)
	if !ok {
		return nil, nil, nil
	}
	out, err := scanAll[dsr.Request](s.r.QueryContext(ctx, q, args...))
	if err != nil {
		return nil, nil, fmt.Errorf("list requests: %w", err)
	}
	if len(out) <= f.Limit {
		return out, nil, nil
	}
	out = out[:f.Limit]
	last := out[len(out)-1]
	return out, &dsr.Cursor{Due: last.DueAt, ID: last.ID}, nil
}

// listQuery is the query of ListRequests and its arguments; false when f
// can match nothing (overdue and a closed status).
func listQuery(f dsr.ListFilter) (string, []any, bool) {
	var (
		where []string
		args  []any
	)
	eq := func(col, v string) {
		if v != "" {
			where, args = append(where, col+" = ?"), append(args, v)
		}
	}
	eq("status", string(f.Status))
	eq("type", string(f.Type))
	eq("regulation", string(f.Regulation))
	eq("source", f.Source)
	eq("assigned_to", f.AssignedTo)
	// Which index serves the list is left to SQLite, which picks the
	// filter's own (each continues with the sort), except where without
	// statistics it would pick a worse one: the overdue list reads the
	// overdue requests alone (requests_running_due_id), and a due window
	// listed newest first reads the window (requests_due_id) rather than
	// walk every request newest first looking for it; both then sort what
	// they read by id.
	from := "requests"
	switch {
	case f.Overdue && f.Status == "":
		from += " INDEXED BY requests_running_due_id"
	case f.Sort == dsr.SortNewest && len(where) == 0 && (f.DueBefore != nil || f.DueAfter != nil):
		from += " INDEXED BY requests_due_id"
	}
	before := f.DueBefore
	if f.Overdue {
		// Open and past due: one bound, the earlier.
		if before == nil || f.Now.Before(*before) {
			before = &f.Now
		}
		if f.Status == "" {
			// Word for word the terms of requests_running_due_id.
			where = append(where, "status IN "+openStatusesSQL)
		} else if !f.Status.Open() {
			return "", nil, false
		}
		// A paused clock is not late.
		where = append(where, "paused_at IS NULL")
	}
	if before != nil {
		where, args = append(where, "due_at < ?"), append(args, ms(*before))
	}
	// A cursor at or after the window's start bounds the range by itself
	// (SQLite takes one lower bound of a range: with both, it would read
	// every page from the window's start).
	if f.DueAfter != nil && (f.Sort == dsr.SortNewest || f.After == nil || ms(f.After.Due) < ms(*f.DueAfter)) {
		where, args = append(where, "due_at >= ?"), append(args, ms(*f.DueAfter))
	}
	order := "due_at, id"
	if f.Sort == dsr.SortNewest {
		order = "id DESC"
		if f.After != nil {
			where, args = append(where, "id < ?"), append(args, f.After.ID)
		}
	} else if c := f.After; c != nil {
		where, args = append(where, "(due_at, id) > (?, ?)"), append(args, ms(c.Due), c.ID)
	}
	q := "SELECT doc FROM " + from
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + order + " LIMIT ?"
	return q, append(args, f.Limit+1), true
}
