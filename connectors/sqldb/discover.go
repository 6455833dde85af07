package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/discover"
)

// Discover implements connectors.Discoverer. It lists the base tables of
// the connector's schema (PostgreSQL) or database (MySQL) from
// information_schema, in name order, and reads from each the first
// opts.Sample rows in the server's natural order (a plain SELECT ... LIMIT,
// no ORDER BY), looking at every text, integer and uuid column: text values
// by their shape, any of them by the column's name (a customer id). A
// column is covered when the table's entry names it in match, provide or
// mask. Values are classified and dropped: nothing of them is kept, logged
// or returned, and errors are rendered without the values a driver may
// quote.
func (c *Connector) Discover(ctx context.Context, opts connectors.DiscoverOptions, found func(connectors.Finding)) (connectors.Scanned, error) {
	var scanned connectors.Scanned
	names, err := c.tableNames(ctx)
	if err != nil {
		return scanned, fmt.Errorf("list the tables of %q: %w", c.schema, wrap(c.d, err))
	}
	live := &liveSchema{tables: map[string]*table{}}
	if len(names) > 0 {
		if live, err = c.d.readSchema(ctx, c.db, c.schema, names); err != nil {
			return scanned, fmt.Errorf("read the columns of %q: %w", c.schema, wrap(c.d, err))
		}
	}
	configured := map[string]*tbl{}
	for _, t := range c.tables {
		configured[t.spec.Name] = t
	}
	if opts.Progress != nil {
		opts.Progress(0, len(names))
	}
	n := opts.SampleSize()
	for i, name := range names {
		var tally discover.Tally
		if lt := live.tables[name]; lt != nil {
			if err := c.sample(ctx, lt, n, &tally); err != nil {
				return scanned, fmt.Errorf("sample %s: %w", name, wrap(c.d, err))
			}
		}
		scanned.Collections++
		scanned.Documents += tally.Rows()
		t, isConfigured := configured[name]
		var covered []string
		if isConfigured {
			covered = t.coveredColumns()
		}
		for _, f := range tally.Findings(name, isConfigured, discover.CoveredBy(covered...)) {
			found(f)
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(names))
		}
	}
	return scanned, nil
}

// tableNames returns the base tables of the connector's schema, sorted.
func (c *Connector) tableNames(ctx context.Context) ([]string, error) {
	q := &query{d: c.d}
	q.add(`SELECT table_name FROM information_schema.tables WHERE table_schema = `, q.arg(c.schema),
		` AND table_type = 'BASE TABLE' ORDER BY table_name`)
	rows, err := c.db.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			_ = rows.Close()
			return nil, err
		}
		out = append(out, name)
	}
	return out, closeRows(rows)
}

// sample reads at most n rows of lt's text, integer and uuid columns into
// tally. A table without such columns is not read.
func (c *Connector) sample(ctx context.Context, lt *table, n int, tally *discover.Tally) error {
	var cols []string
	for _, name := range lt.columnNames() {
		switch lt.columns[name].class {
		case classText, classInt, classUUID:
			cols = append(cols, name)
		}
	}
	if len(cols) == 0 {
		return nil
	}
	idents := make([]string, len(cols))
	for i, col := range cols {
		idents[i] = c.d.column(col)
	}
	rows, err := c.db.QueryContext(ctx, "SELECT "+strings.Join(idents, ", ")+" FROM "+c.d.table(c.schema, lt.name)+
		" LIMIT "+strconv.Itoa(n))
	if err != nil {
		return err
	}
	vals := make([]sql.NullString, len(cols))
	dest := make([]any, len(cols))
	for i := range vals {
		dest[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			_ = rows.Close()
			return err
		}
		tally.Row()
		for i, v := range vals {
			if v.Valid {
				tally.Value(cols[i], v.String)
			}
		}
	}
	clear(vals)
	return closeRows(rows)
}

// coveredColumns are the columns of t that Discover takes as covered: those
// named in match, provide or mask.
func (t *tbl) coveredColumns() []string {
	var out []string
	for _, m := range t.match {
		out = append(out, m.name)
	}
	for _, p := range t.provide {
		out = append(out, p.name)
	}
	for _, m := range t.mask {
		out = append(out, m.name)
	}
	return out
}
