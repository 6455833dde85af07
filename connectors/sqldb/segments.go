package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/dsar-project/dsar/connectors"
)

// memberBatch is how many rows a member listing reads at a time.
const memberBatch = 500

// EachSegmentMember implements connectors.SegmentLister over the tables
// that have opt_out: each row is a member, known by its match columns'
// values (NULLs left out). With {set: ...}, a row that holds every set
// value already is opted out and not listed. A table with a primary key
// is read a batch at a time in key order, each batch a statement of its
// own, so no read stays open while fn runs; a table without one is read
// by one statement, streamed.
func (c *Connector) EachSegmentMember(ctx context.Context, fn func(segment string, member connectors.Subject) error) error {
	for _, t := range c.tables {
		if t.spec.OptOut == nil {
			continue
		}
		if err := c.eachMember(ctx, t, fn); err != nil {
			return fmt.Errorf("list members of %s: %w", t.spec.Name, c.d.classify(err))
		}
	}
	return nil
}

// Segments implements connectors.SegmentLister: the tables with an
// opt_out strategy.
func (c *Connector) Segments() []string {
	var out []string
	for _, t := range c.tables {
		if t.spec.OptOut != nil {
			out = append(out, t.spec.Name)
		}
	}
	return out
}

// eachMember lists the members of one table.
func (c *Connector) eachMember(ctx context.Context, t *tbl, fn func(string, connectors.Subject) error) error {
	var after []any // the last key of the previous batch
	for {
		q := c.newQuery()
		sel := make([]string, 0, len(t.pk)+len(t.match))
		keys := make([]string, len(t.pk))
		for i, k := range t.pk {
			sel = append(sel, k.ident)
			keys[i] = k.ident
		}
		for _, m := range t.match {
			sel = append(sel, m.ident)
		}
		var conds []string
		if t.spec.OptOut.Kind == StrategySet {
			differs := make([]string, len(t.set))
			for i, sc := range t.set {
				differs[i] = c.d.differs(q, sc.ident, sc.value)
			}
			conds = append(conds, "("+strings.Join(differs, " OR ")+")")
		}
		if after != nil {
			ph := make([]string, len(after))
			for i, v := range after {
				ph[i] = q.arg(v)
			}
			conds = append(conds, "("+strings.Join(keys, ", ")+") > ("+strings.Join(ph, ", ")+")")
		}
		q.add("SELECT ", strings.Join(sel, ", "), " FROM ", t.ident)
		if len(conds) > 0 {
			q.add(" WHERE ", strings.Join(conds, " AND "))
		}
		if len(t.pk) > 0 {
			q.add(t.orderBy, fmt.Sprintf(" LIMIT %d", memberBatch))
		}
		if len(t.pk) == 0 {
			return c.streamMembers(ctx, t, q, fn)
		}
		batch, err := c.memberBatch(ctx, q, len(sel))
		if err != nil {
			return err
		}
		for _, row := range batch {
			if m := memberOf(t, row[len(t.pk):]); len(m.Identities) > 0 {
				if err := fn(t.spec.Name, m); err != nil {
					return err
				}
			}
		}
		if len(batch) < memberBatch {
			return nil
		}
		after = batch[len(batch)-1][:len(t.pk)]
	}
}

// memberBatch reads the rows of q, each n values.
func (c *Connector) memberBatch(ctx context.Context, q *query, n int) ([][]any, error) {
	rows, err := c.db.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return nil, wrap(c.d, err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals, err := scanRow(rows, n)
		if err != nil {
			return nil, wrap(c.d, err)
		}
		out = append(out, vals)
	}
	return out, wrap(c.d, rows.Err())
}

// streamMembers reads a table without a primary key in one statement,
// calling fn for each row as it comes.
func (c *Connector) streamMembers(ctx context.Context, t *tbl, q *query, fn func(string, connectors.Subject) error) error {
	rows, err := c.db.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return wrap(c.d, err)
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := scanRow(rows, len(t.match))
		if err != nil {
			return wrap(c.d, err)
		}
		if m := memberOf(t, vals); len(m.Identities) > 0 {
			if err := fn(t.spec.Name, m); err != nil {
				return err
			}
		}
	}
	return wrap(c.d, rows.Err())
}

func scanRow(rows *sql.Rows, n int) ([]any, error) {
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	for i, v := range vals {
		if b, ok := v.([]byte); ok {
			vals[i] = string(b) // MySQL hands text over as bytes; a key compared again must be a value
		}
	}
	return vals, nil
}

// memberOf is the member whose match columns hold vals.
func memberOf(t *tbl, vals []any) connectors.Subject {
	var m connectors.Subject
	for i, mc := range t.match {
		if v := identityText(vals[i]); v != "" {
			m.Identities = append(m.Identities, connectors.Identity{Kind: mc.kind, Value: v})
		}
	}
	return m
}
