package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/dsar-project/dsar/connectors"
)

// Check reports, as `dsar connectors test` shows them: whether the server
// answers, whether it accepts the credentials, whether each configured table
// and column still exists (the load checked them; the schema may have
// changed since), and, for each table that does, whether the connection's user holds the privileges
// each configured action needs (SELECT to export and resolve, DELETE to
// delete, UPDATE to mask or set).
func (c *Connector) Check(ctx context.Context) []connectors.Check {
	var out []connectors.Check
	add := func(what string, err error) { out = append(out, connectors.Check{What: what, Err: err}) }

	if err := c.db.PingContext(ctx); err != nil {
		err = wrap(c.d, err)
		if c.d.rejected(err) {
			add("reachable", nil)
			add("credentials accepted", fmt.Errorf("refused: %w", err))
			return out
		}
		add("reachable", err)
		return out
	}
	add("reachable", nil)
	add("credentials accepted", nil)

	names := make([]string, len(c.tables))
	for i, t := range c.tables {
		names[i] = t.spec.Name
	}
	live, schemaErr := c.d.readSchema(ctx, c.db, c.schema, names)
	gone := map[*tbl]bool{}
	for _, t := range c.tables {
		var lt *table
		switch {
		case schemaErr != nil:
			add("table "+t.spec.Name, fmt.Errorf("%w: cannot read the schema: %w", connectors.ErrNotChecked, wrap(c.d, schemaErr)))
			continue
		case live.tables[t.spec.Name] == nil:
			add("table "+t.spec.Name, fmt.Errorf("schema %q has no table %q (or the user may not read it)", c.schema, t.spec.Name))
			gone[t] = true
			continue
		default:
			lt = live.tables[t.spec.Name]
			add("table "+t.spec.Name, nil)
		}
		for _, col := range t.columns() {
			var err error
			if lt.columns[col] == nil {
				err = fmt.Errorf("table %q has no column %q", t.spec.Name, col)
			}
			add(fmt.Sprintf("column %s in %s", col, t.spec.Name), err)
		}
	}

	for _, t := range c.tables {
		if gone[t] {
			continue // no privilege on what is not there
		}
		for _, priv := range t.privileges() {
			what := fmt.Sprintf("permission to %s in %s", strings.ToLower(priv), t.spec.Name)
			ok, err := c.d.privileged(ctx, c.db, c.schema, t.spec.Name, priv)
			switch {
			case err != nil:
				add(what, fmt.Errorf("%w: %w", connectors.ErrNotChecked, wrap(c.d, err)))
			case !ok:
				add(what, fmt.Errorf("the user may not %s in %s (%s privilege missing)", priv, t.spec.Name, priv))
			default:
				add(what, nil)
			}
		}
	}
	return out
}

// columns returns every column the file names in t, sorted, without
// duplicates.
func (t *tbl) columns() []string {
	seen := map[string]bool{}
	for _, m := range t.match {
		seen[m.name] = true
	}
	for _, p := range t.provide {
		seen[p.name] = true
	}
	for _, m := range t.mask {
		seen[m.name] = true
	}
	for _, s := range t.set {
		seen[s.name] = true
	}
	return connectors.SortedKeys(seen)
}

// privileges returns the table privileges t's configured actions need:
// SELECT always (export, resolve, and finding rows to mask), DELETE to
// delete, UPDATE to mask (which also locks rows FOR UPDATE) or set.
func (t *tbl) privileges() []string {
	out := []string{"SELECT"}
	del := (t.spec.Erase.Kind == StrategyDelete && t.spec.Retain == "") || (t.spec.OptOut != nil && t.spec.OptOut.Kind == StrategyDelete)
	if del {
		out = append(out, "DELETE")
	}
	if t.spec.Erase.Kind == StrategyMask || (t.spec.OptOut != nil && t.spec.OptOut.Kind == StrategySet) {
		out = append(out, "UPDATE")
	}
	return out
}

// rejected reports an error of PostgreSQL refusing the credentials.
func (postgres) rejected(err error) bool {
	code, ok := pgCode(err)
	return ok && strings.HasPrefix(code, "28")
}

// privileged asks has_table_privilege, which counts privileges held through
// roles too.
func (d postgres) privileged(ctx context.Context, db *sql.DB, schema, table, priv string) (bool, error) {
	var ok bool
	err := db.QueryRowContext(ctx, "SELECT has_table_privilege($1, $2)", d.table(schema, table), priv).Scan(&ok)
	return ok, err
}

// rejected reports an error of MySQL refusing the credentials.
func (mysqlDialect) rejected(err error) bool {
	n, ok := mysqlNumber(err)
	return ok && (n == 1045 || n == 1698 || n == 1044)
}

// privileged looks for priv granted to the current user on the table, its
// schema or globally, in information_schema. Privileges held only through
// a role are not seen there: such a check reports the privilege missing.
func (mysqlDialect) privileged(ctx context.Context, db *sql.DB, schema, table, priv string) (bool, error) {
	var user string
	if err := db.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&user); err != nil {
		return false, err
	}
	at := strings.LastIndex(user, "@")
	if at < 0 {
		return false, errors.New("CURRENT_USER() is not user@host")
	}
	grantee := "'" + user[:at] + "'@'" + user[at+1:] + "'"
	var n int
	err := db.QueryRowContext(ctx, `SELECT
	(SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ? AND PRIVILEGE_TYPE = ?) +
	(SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = ? AND PRIVILEGE_TYPE = ?) +
	(SELECT COUNT(*) FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = ? AND TABLE_NAME = ? AND PRIVILEGE_TYPE = ?)`,
		grantee, priv, grantee, schema, priv, grantee, schema, table, priv).Scan(&n)
	return n > 0, err
}
