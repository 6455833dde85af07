// Package sqldb is the connector for data kept in SQL databases: the
// postgres type (PostgreSQL, through pgx) and the mysql type (MySQL and
// MariaDB, through go-sql-driver/mysql). The connectors file names the
// tables, the column matching each identity kind, and what each action does
// to the rows that match.
//
// Every name in the file is checked against the live schema when the file
// is loaded: an unknown table or column, a mask the column cannot hold, a
// cycle of foreign keys among tables that delete, is a start-up error with
// its line, never a runtime SQL error. Statements carry every value as an
// argument; identifiers, read from the schema, are quoted by the dialect.
// Each action runs in one transaction; deletions go children first, in the
// order of the foreign keys.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mask"
)

// The type names in the connectors file.
const (
	TypePostgres = "postgres"
	TypeMySQL    = "mysql"
)

// Connector reaches one database. It implements connectors.Exporter, Eraser,
// OptOuter, Resolver, Scoped, Checker and Discoverer, and io.Closer.
type Connector struct {
	name   string
	d      dialect
	db     *sql.DB
	masker *mask.Masker
	// schema holds the tables: the PostgreSQL schema or MySQL database.
	schema string
	// tables in file order (export, resolve); eraseOrder the same tables
	// children first (erase, opt-out).
	tables     []*tbl
	eraseOrder []*tbl
}

// tbl is a configured table, bound to the live schema.
type tbl struct {
	spec    *TableSpec
	ident   string // quoted, qualified
	match   []matchCol
	provide []matchCol // kind: the identity kind provided
	pk      []colRef
	mask    []maskCol
	set     []setCol
	orderBy string // " ORDER BY pk" for a stable export; "" without a key
}

type colRef struct {
	*column
	ident string
}

type matchCol struct {
	colRef
	kind string
}

type maskCol struct {
	colRef
	strategy mask.Strategy
}

type setCol struct {
	colRef
	value any
}

// PostgresFactory returns the factory for the postgres type.
func PostgresFactory(d connectors.Deps) connectors.Factory { return factory(postgres{}, d) }

// MySQLFactory returns the factory for the mysql type.
func MySQLFactory(d connectors.Deps) connectors.Factory { return factory(mysqlDialect{}, d) }

func factory(dl dialect, d connectors.Deps) connectors.Factory {
	return func(ctx context.Context, name string, node *yaml.Node) (connectors.Connector, error) {
		var spec Spec
		if err := connectors.DecodeStrict(node, &spec); err != nil {
			return nil, err
		}
		spec.lines = connectors.KeyLines(node)
		return build(ctx, dl, name, spec, d.Mask)
	}
}

// NewPostgres validates spec, connects and checks it against the live
// schema. masker masks for erase: mask (nil refuses hmac and email_format).
func NewPostgres(ctx context.Context, name string, spec Spec, masker *mask.Masker) (*Connector, error) {
	return build(ctx, postgres{}, name, spec, masker)
}

// NewMySQL is NewPostgres for MySQL and MariaDB.
func NewMySQL(ctx context.Context, name string, spec Spec, masker *mask.Masker) (*Connector, error) {
	return build(ctx, mysqlDialect{}, name, spec, masker)
}

func build(ctx context.Context, d dialect, name string, spec Spec, masker *mask.Masker) (*Connector, error) {
	if err := spec.validate(masker != nil); err != nil {
		return nil, err
	}
	db, schema, err := d.open(spec.DSN)
	if err != nil {
		return nil, connectors.Errorf(&yaml.Node{Line: connectors.FirstLine(spec.lines, "dsn", "")}, "%v", err)
	}
	c := &Connector{name: name, d: d, db: db, masker: masker}
	if err := c.bind(ctx, &spec, schema); err != nil {
		_ = db.Close()
		return nil, err
	}
	return c, nil
}

// bind reads the live schema and binds every configured table to it,
// returning every problem with its line.
func (c *Connector) bind(ctx context.Context, spec *Spec, schema string) error {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	if spec.Schema != "" {
		schema = spec.Schema
	}
	at := connectors.FirstLine(spec.lines, "dsn", "")
	if schema == "" {
		var err error
		if schema, err = c.d.currentSchema(ctx, c.db); err != nil {
			return fmt.Errorf("line %d: cannot read the schema to check the tables against: %w", at, c.d.classify(wrap(c.d, err)))
		}
	}
	names := make([]string, len(spec.Tables))
	for i := range spec.Tables {
		names[i] = spec.Tables[i].Name
	}
	c.schema = schema
	live, err := c.d.readSchema(ctx, c.db, schema, names)
	if err != nil {
		return fmt.Errorf("line %d: cannot read the schema to check the tables against: %w", at, c.d.classify(wrap(c.d, err)))
	}
	var p connectors.Problems
	for i := range spec.Tables {
		if t := c.bindTable(&spec.Tables[i], live, &p); t != nil {
			c.tables = append(c.tables, t)
		}
	}
	if len(p) > 0 {
		return p.Err()
	}
	order, err := live.eraseOrder(names, func(i int) bool {
		t := &spec.Tables[i]
		return (t.Erase.Kind == StrategyDelete && t.Retain == "") || (t.OptOut != nil && t.OptOut.Kind == StrategyDelete)
	})
	if err != nil {
		return fmt.Errorf("line %d: %w", connectors.FirstLine(spec.lines, "tables", ""), err)
	}
	for _, i := range order {
		c.eraseOrder = append(c.eraseOrder, c.tables[i])
	}
	return nil
}

// Text-only strategies write values of these lengths at most.
var maskLen = map[mask.Kind]int64{mask.HMAC: 64, mask.EmailFormat: int64(len("redacted-0123456789abcdef@invalid"))}

// bindTable checks one table against the live schema; problems go to p.
func (c *Connector) bindTable(ts *TableSpec, live *liveSchema, p *connectors.Problems) *tbl {
	where := fmt.Sprintf("table %q", ts.Name)
	lt := live.tables[ts.Name]
	if lt == nil {
		have := connectors.SortedKeys(live.tables)
		p.At(ts.line("name"), "%s: no such table in schema %q (or the connection may not read it)%s", where, live.name, suggest(ts.Name, have))
		return nil
	}
	t := &tbl{spec: ts, ident: c.d.table(live.name, lt.name)}
	ok := true
	col := func(key, name, what string) *colRef {
		lc := lt.columns[name]
		if lc == nil {
			p.At(ts.line(key), "%s: %s: no such column %q (columns: %s)%s", where, what, name, strings.Join(lt.columnNames(), ", "), suggest(name, lt.columnNames()))
			ok = false
			return nil
		}
		return &colRef{column: lc, ident: c.d.column(lc.name)}
	}
	for _, name := range connectors.SortedKeys(ts.Match) {
		r := col("match."+name, name, "match")
		if r == nil {
			continue
		}
		if r.class != classText && r.class != classInt && r.class != classUUID {
			p.At(ts.line("match."+name), "%s: match: column %q is %s; a match column holds text, an integer or a uuid", where, name, r.dataType)
			ok = false
			continue
		}
		t.match = append(t.match, matchCol{colRef: *r, kind: ts.Match[name]})
	}
	for _, kind := range connectors.SortedKeys(ts.Provide) {
		name := ts.Provide[kind]
		r := col("provide."+kind, name, "provide "+kind)
		if r == nil {
			continue
		}
		if r.class != classText && r.class != classInt && r.class != classUUID {
			p.At(ts.line("provide."+kind), "%s: provide: column %q is %s; an identity comes from text, an integer or a uuid", where, name, r.dataType)
			ok = false
			continue
		}
		t.provide = append(t.provide, matchCol{colRef: *r, kind: kind})
	}
	for _, name := range lt.pk {
		t.pk = append(t.pk, colRef{column: lt.columns[name], ident: c.d.column(name)})
	}
	if len(t.pk) > 0 {
		idents := make([]string, len(t.pk))
		for i, k := range t.pk {
			idents[i] = k.ident
		}
		t.orderBy = " ORDER BY " + strings.Join(idents, ", ")
	}
	if ts.Erase.Kind == StrategyMask && len(t.pk) == 0 {
		p.At(ts.Erase.line, "%s: erase: mask needs a primary key, to mask row by row; the table has none", where)
		ok = false
	}
	for _, name := range connectors.SortedKeys(ts.Mask) {
		key := "mask." + name
		r := col(key, name, "mask")
		if r == nil {
			continue
		}
		st := ts.Mask[name]
		switch {
		case st.Text() && r.class != classText:
			p.At(ts.line(key), "%s: mask: %s: %s masks text only, and the column is %s; use null or {fixed: VALUE}", where, name, st, r.dataType)
			ok = false
		case st.Text() && maskLen[st.Kind] > 0 && r.maxLen > 0 && r.maxLen < maskLen[st.Kind]:
			p.At(ts.line(key), "%s: mask: %s: %s writes %d characters, and the column holds %d", where, name, st, maskLen[st.Kind], r.maxLen)
			ok = false
		case (st.Kind == mask.Null || st.Kind == "") && !r.nullable:
			p.At(ts.line(key), "%s: mask: %s: the column is NOT NULL, so null cannot mask it; use {fixed: VALUE} or a text strategy", where, name)
			ok = false
		case st.Kind == mask.Fixed:
			v, err := r.value(st.Value)
			if err != nil {
				p.At(ts.line(key), "%s: mask: %s: %v", where, name, err)
				ok = false
			}
			st.Value = v
		}
		t.mask = append(t.mask, maskCol{colRef: *r, strategy: st})
	}
	if o := ts.OptOut; o != nil && o.Kind == StrategySet {
		for _, name := range connectors.SortedKeys(o.Set) {
			line := connectors.FirstLine(o.setLines, name)
			if line == 0 {
				line = o.line
			}
			lc := lt.columns[name]
			if lc == nil {
				p.At(line, "%s: opt_out: set: no such column %q (columns: %s)%s", where, name, strings.Join(lt.columnNames(), ", "), suggest(name, lt.columnNames()))
				ok = false
				continue
			}
			v, err := lc.value(o.Set[name])
			if err != nil {
				p.At(line, "%s: opt_out: set: %s: %v", where, name, err)
				ok = false
				continue
			}
			t.set = append(t.set, setCol{colRef: colRef{column: lc, ident: c.d.column(name)}, value: v})
		}
	}
	if !ok {
		return nil
	}
	return t
}

// value returns v, a value from the file, as the argument to write into
// the column, or an error when the column cannot hold it.
func (c *column) value(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		if !c.nullable {
			return nil, errors.New("the column is NOT NULL")
		}
		return nil, nil
	case bool:
		if c.class == classBool || c.class == classInt {
			return x, nil
		}
	case int:
		if c.class == classInt || c.class == classNumber {
			return int64(x), nil
		}
		if c.class == classText {
			return fmt.Sprint(x), nil
		}
	case float64:
		if c.class == classNumber {
			return x, nil
		}
		if c.class == classText {
			return fmt.Sprint(x), nil
		}
	case string:
		if c.maxLen > 0 && int64(len([]rune(x))) > c.maxLen {
			return nil, fmt.Errorf("%d characters, and the column holds %d", len([]rune(x)), c.maxLen)
		}
		if c.class != classInt && c.class != classNumber && c.class != classBool {
			return x, nil // text, or what the server parses (a date, a uuid)
		}
	}
	return nil, fmt.Errorf("%v (%T) does not fit the column, which is %s", v, v, c.dataType)
}

// Name implements connectors.Connector.
func (c *Connector) Name() string { return c.name }

// Close closes the connection pool.
func (c *Connector) Close() error { return c.db.Close() }

// Handles reports opt-out support only when a table has opt_out set.
func (c *Connector) Handles(a connectors.Action) bool {
	if a != connectors.ActionOptOut {
		return true
	}
	for _, t := range c.tables {
		if t.spec.OptOut != nil {
			return true
		}
	}
	return false
}
