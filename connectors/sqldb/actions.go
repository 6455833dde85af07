package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mask"
)

// maxAttempts bounds how often an action's transaction runs when the server
// ends it for a deadlock or a serialization failure.
const maxAttempts = 3

// inTx runs fn in one transaction and commits it; a deadlock runs it again
// (retry), up to maxAttempts. The error is classified for the worker and
// rendered without the values a driver message may quote.
func (c *Connector) inTx(ctx context.Context, opts *sql.TxOptions, retry bool, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := c.once(ctx, opts, fn)
		if err == nil {
			return nil
		}
		if retry && attempt < maxAttempts && ctx.Err() == nil && c.d.retryable(err) {
			continue
		}
		return c.d.classify(err)
	}
}

func (c *Connector) once(ctx context.Context, opts *sql.TxOptions, fn func(tx *sql.Tx) error) error {
	tx, err := c.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", wrap(c.d, err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", wrap(c.d, err))
	}
	return nil
}

// readOnly is how the reading actions run: one snapshot of every table.
var readOnly = &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}

// writing is how the changing actions run: each statement sees what others
// committed before it (a second erasure waiting on the first's locks then
// finds nothing left), with MySQL's gap locks kept out of the way.
var writing = &sql.TxOptions{Isolation: sql.LevelReadCommitted}

// where returns the condition for the subject's rows of t: any match column
// equal to one of the subject's identities of its kind. ok is false when
// none of the subject's identities can be in any match column.
func (c *Connector) where(q *query, t *tbl, s connectors.Subject) (cond string, ok bool) {
	var ors []string
	for _, m := range t.match {
		var vals []any
		seen := map[any]bool{}
		for _, v := range s.Values(m.kind) {
			if p, fits := m.param(v); fits && !seen[p] {
				seen[p] = true
				vals = append(vals, p)
			}
		}
		if len(vals) > 0 {
			ors = append(ors, c.d.in(q, m.column, m.ident, vals))
		}
	}
	if len(ors) == 0 {
		return "", false
	}
	return "(" + strings.Join(ors, " OR ") + ")", true
}

// matchKinds returns the identity kinds t is matched by and those s has.
func matchKinds(t *tbl, s connectors.Subject) (kinds, known []string) {
	return connectors.MatchKinds(t.spec.Match, s)
}

func (c *Connector) newQuery() *query { return &query{d: c.d} }

// Export writes every row that matches, all columns, in the table's column
// order, one row at a time as the server sends them (ordered by primary
// key, so two exports write the same records). All tables are read in one
// read-only transaction: one snapshot.
func (c *Connector) Export(ctx context.Context, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	var res connectors.Result
	err := c.inTx(ctx, readOnly, false, func(tx *sql.Tx) error {
		res = connectors.Result{}
		enc := newRecordEncoder()
		for _, t := range c.tables {
			kinds, known := matchKinds(t, s)
			if len(known) == 0 {
				res.NotSearched(t.spec.Name, kinds)
				continue
			}
			n, err := c.exportTable(ctx, tx, t, s, out, enc)
			if err != nil {
				return fmt.Errorf("export %s: %w", t.spec.Name, err)
			}
			res.Searched(connectors.CollectionResult{Name: t.spec.Name, Outcome: "exported", Records: n, MatchKinds: kinds, KindsKnown: known})
		}
		return nil
	})
	return res, err
}

func (c *Connector) exportTable(ctx context.Context, tx *sql.Tx, t *tbl, s connectors.Subject, out connectors.RecordWriter, enc *recordEncoder) (int64, error) {
	q := c.newQuery()
	cond, ok := c.where(q, t, s)
	if !ok {
		return 0, nil
	}
	q.add("SELECT * FROM ", t.ident, " WHERE ", cond, t.orderBy)
	rows, err := tx.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return 0, wrap(c.d, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, wrap(c.d, err)
	}
	cts, err := rows.ColumnTypes()
	if err != nil {
		return 0, wrap(c.d, err)
	}
	types := make([]string, len(cts))
	for i, ct := range cts {
		types[i] = strings.ToUpper(ct.DatabaseTypeName())
	}
	keys, err := enc.encodeKeys(cols)
	if err != nil {
		return 0, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, wrap(c.d, err)
		}
		rec, err := enc.encode(cols, keys, types, vals)
		if err != nil {
			return n, err
		}
		if err := out.WriteRecord(ctx, t.spec.Name, rec); err != nil {
			return n, err
		}
		n++
	}
	return n, wrap(c.d, rows.Err())
}

// Resolve returns the identities that matching rows provide, without
// duplicates.
func (c *Connector) Resolve(ctx context.Context, s connectors.Subject) ([]connectors.Identity, error) {
	var out []connectors.Identity
	err := c.inTx(ctx, readOnly, false, func(tx *sql.Tx) error {
		out = nil
		seen := map[connectors.Identity]bool{}
		for _, t := range c.tables {
			if len(t.provide) == 0 {
				continue
			}
			q := c.newQuery()
			cond, ok := c.where(q, t, s)
			if !ok {
				continue
			}
			idents := make([]string, len(t.provide))
			for i, p := range t.provide {
				idents[i] = p.ident
			}
			q.add("SELECT ", strings.Join(idents, ", "), " FROM ", t.ident, " WHERE ", cond)
			if err := c.resolveTable(ctx, tx, t, q, func(id connectors.Identity) {
				if !seen[id] {
					seen[id] = true
					out = append(out, id)
				}
			}); err != nil {
				return fmt.Errorf("resolve in %s: %w", t.spec.Name, err)
			}
		}
		return nil
	})
	return out, err
}

func (c *Connector) resolveTable(ctx context.Context, tx *sql.Tx, t *tbl, q *query, found func(connectors.Identity)) error {
	rows, err := tx.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return wrap(c.d, err)
	}
	defer rows.Close()
	vals := make([]any, len(t.provide))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return wrap(c.d, err)
		}
		for i, p := range t.provide {
			if v := identityText(vals[i]); v != "" {
				found(connectors.Identity{Kind: p.kind, Value: v, Source: c.name + "/" + t.spec.Name})
			}
		}
	}
	return wrap(c.d, rows.Err())
}

// identityText renders a provided value as an identity; "" for none.
func identityText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return fmt.Sprint(x)
	case uint64:
		return fmt.Sprint(x)
	}
	return ""
}

// Erase applies each table's erase strategy, children before parents, in
// one transaction. A table kept on a legal basis (retain) is masked when
// its strategy is mask, and otherwise kept whole and counted; either way
// the result names the basis.
func (c *Connector) Erase(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	err := c.inTx(ctx, writing, true, func(tx *sql.Tx) error {
		res = connectors.Result{}
		for _, t := range c.eraseOrder {
			kinds, known := matchKinds(t, s)
			if len(known) == 0 {
				res.NotSearched(t.spec.Name, kinds)
				continue
			}
			r := connectors.CollectionResult{Name: t.spec.Name, MatchKinds: kinds, KindsKnown: known, Basis: t.spec.Retain}
			var err error
			switch {
			case t.spec.Erase.Kind == StrategyMask:
				r.Outcome = "masked"
				r.Records, err = c.maskRows(ctx, tx, t, s)
			case t.spec.Retain != "":
				r.Outcome = "retained"
				r.Records, err = c.count(ctx, tx, t, s)
			default:
				r.Outcome = "deleted"
				r.Records, err = c.deleteRows(ctx, tx, t, s)
			}
			if err != nil {
				return fmt.Errorf("erase %s: %w", t.spec.Name, err)
			}
			res.Searched(r)
		}
		return nil
	})
	return res, err
}

// OptOut applies each table's opt_out strategy, children before parents,
// in one transaction; tables without one are left alone.
func (c *Connector) OptOut(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	err := c.inTx(ctx, writing, true, func(tx *sql.Tx) error {
		res = connectors.Result{}
		for _, t := range c.eraseOrder {
			if t.spec.OptOut == nil {
				continue
			}
			kinds, known := matchKinds(t, s)
			if len(known) == 0 {
				res.NotSearched(t.spec.Name, kinds)
				continue
			}
			r := connectors.CollectionResult{Name: t.spec.Name, MatchKinds: kinds, KindsKnown: known}
			var err error
			if t.spec.OptOut.Kind == StrategyDelete {
				r.Outcome = "deleted"
				r.Records, err = c.deleteRows(ctx, tx, t, s)
			} else {
				r.Outcome = "set"
				r.Records, err = c.setRows(ctx, tx, t, s)
			}
			if err != nil {
				return fmt.Errorf("opt out %s: %w", t.spec.Name, err)
			}
			res.Searched(r)
		}
		return nil
	})
	return res, err
}

func (c *Connector) exec(ctx context.Context, tx *sql.Tx, q *query) (int64, error) {
	r, err := tx.ExecContext(ctx, q.String(), q.args...)
	if err != nil {
		return 0, wrap(c.d, err)
	}
	n, err := r.RowsAffected()
	return n, wrap(c.d, err)
}

// deleteRows deletes the subject's rows of t.
func (c *Connector) deleteRows(ctx context.Context, tx *sql.Tx, t *tbl, s connectors.Subject) (int64, error) {
	q := c.newQuery()
	cond, ok := c.where(q, t, s)
	if !ok {
		return 0, nil
	}
	q.add("DELETE FROM ", t.ident, " WHERE ", cond)
	return c.exec(ctx, tx, q)
}

// count counts the subject's rows of t.
func (c *Connector) count(ctx context.Context, tx *sql.Tx, t *tbl, s connectors.Subject) (int64, error) {
	q := c.newQuery()
	cond, ok := c.where(q, t, s)
	if !ok {
		return 0, nil
	}
	q.add("SELECT COUNT(*) FROM ", t.ident, " WHERE ", cond)
	var n int64
	err := tx.QueryRowContext(ctx, q.String(), q.args...).Scan(&n)
	return n, wrap(c.d, err)
}

// setRows sets the opt-out columns in the subject's rows that do not hold
// all of them yet, so a second opt-out changes and reports nothing.
func (c *Connector) setRows(ctx context.Context, tx *sql.Tx, t *tbl, s connectors.Subject) (int64, error) {
	q := c.newQuery()
	sets := make([]string, len(t.set))
	for i, sc := range t.set {
		sets[i] = sc.ident + " = " + q.arg(sc.value)
	}
	cond, ok := c.where(q, t, s)
	if !ok {
		return 0, nil
	}
	differs := make([]string, len(t.set))
	for i, sc := range t.set {
		differs[i] = c.d.differs(q, sc.ident, sc.value)
	}
	q.add("UPDATE ", t.ident, " SET ", strings.Join(sets, ", "), " WHERE ", cond, " AND (", strings.Join(differs, " OR "), ")")
	return c.exec(ctx, tx, q)
}

// maskBatch is how many rows masking reads and locks at a time.
const maskBatch = 200

// maskRows masks the subject's rows of t, a batch at a time in primary-key
// order: it reads the key and the masked columns of the rows (locking
// them), computes each masked value in Go (the keyed strategies need the
// service's key), and updates each row by its key. A row whose columns are
// all masked already (mask.Masked) is skipped and not counted, so a second
// erasure reports 0. A column masked with random cannot be told from a
// value: it is masked again whenever its row has another column still to
// mask, and a row masked with random alone is masked again, and counted,
// by every erasure that still matches it (it no longer does when a match
// column is among those masked).
func (c *Connector) maskRows(ctx context.Context, tx *sql.Tx, t *tbl, s connectors.Subject) (int64, error) {
	var total int64
	var after []any // the last key of the previous batch
	for {
		batch, err := c.maskBatch(ctx, tx, t, s, after)
		if err != nil {
			return total, err
		}
		for _, row := range batch {
			n, err := c.maskRow(ctx, tx, t, row)
			if err != nil {
				return total, err
			}
			total += n
		}
		if len(batch) < maskBatch {
			return total, nil
		}
		after = batch[len(batch)-1][:len(t.pk)]
	}
}

// maskBatch reads the next batch of the subject's rows after key after
// (nil: from the start), each as its key followed by its masked columns.
func (c *Connector) maskBatch(ctx context.Context, tx *sql.Tx, t *tbl, s connectors.Subject, after []any) ([][]any, error) {
	q := c.newQuery()
	cond, ok := c.where(q, t, s)
	if !ok {
		return nil, nil
	}
	sel := make([]string, 0, len(t.pk)+len(t.mask))
	keys := make([]string, len(t.pk))
	for i, k := range t.pk {
		sel = append(sel, k.ident)
		keys[i] = k.ident
	}
	for _, m := range t.mask {
		sel = append(sel, m.ident)
	}
	q.add("SELECT ", strings.Join(sel, ", "), " FROM ", t.ident, " WHERE ", cond)
	if after != nil {
		ph := make([]string, len(after))
		for i, v := range after {
			ph[i] = q.arg(v)
		}
		q.add(" AND (", strings.Join(keys, ", "), ") > (", strings.Join(ph, ", "), ")")
	}
	q.add(t.orderBy, fmt.Sprintf(" LIMIT %d FOR UPDATE", maskBatch))
	rows, err := tx.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return nil, wrap(c.d, err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(sel))
		ptrs := make([]any, len(sel))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, wrap(c.d, err)
		}
		out = append(out, vals)
	}
	return out, wrap(c.d, rows.Err())
}

// maskRow masks one row (its key, then its masked columns) and returns 1,
// or 0 when it is masked already.
func (c *Connector) maskRow(ctx context.Context, tx *sql.Tx, t *tbl, row []any) (int64, error) {
	vals := row[len(t.pk):]
	for i := range vals {
		if b, isBytes := vals[i].([]byte); isBytes {
			vals[i] = string(b) // MySQL hands text and decimals over as bytes
		}
	}
	known, pending := false, false
	for i, m := range t.mask {
		done, tells := mask.Masked(m.strategy, vals[i])
		if tells {
			known = true
			pending = pending || !done
		}
	}
	if !known { // random only: mask whatever is still set
		for _, v := range vals {
			pending = pending || v != nil
		}
	}
	if !pending {
		return 0, nil
	}
	q := c.newQuery()
	var sets []string
	for i, m := range t.mask {
		if done, tells := mask.Masked(m.strategy, vals[i]); tells && done {
			continue // an hmac must not hash its own output
		}
		v, err := c.masker.Apply(m.strategy, vals[i])
		if err != nil {
			return 0, fmt.Errorf("mask %s: %w", m.name, err)
		}
		sets = append(sets, m.ident+" = "+q.arg(v))
	}
	keys := make([]string, len(t.pk))
	for i, k := range t.pk {
		keys[i] = k.ident + " = " + q.arg(row[i])
	}
	q.add("UPDATE ", t.ident, " SET ", strings.Join(sets, ", "), " WHERE ", strings.Join(keys, " AND "))
	if _, err := c.exec(ctx, tx, q); err != nil {
		return 0, err
	}
	return 1, nil
}
