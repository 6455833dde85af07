package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/dsar-project/dsar/connectors"
)

// postgres is the PostgreSQL dialect, through pgx's database/sql driver.
type postgres struct{}

func (postgres) open(dsn string) (*sql.DB, string, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors can quote the DSN, password included.
		return nil, "", errors.New("dsn: not a PostgreSQL URL or key=value connection string")
	}
	if _, set := cfg.RuntimeParams["application_name"]; !set {
		cfg.RuntimeParams["application_name"] = "dsar"
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	db := stdlib.OpenDB(*cfg)
	poolDefaults(db)
	return db, "", nil
}

func (postgres) currentSchema(ctx context.Context, db *sql.DB) (string, error) {
	var s sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT current_schema()").Scan(&s); err != nil {
		return "", err
	}
	if !s.Valid {
		return "", errors.New("the connection's search_path names no schema that exists: set schema")
	}
	return s.String, nil
}

// readSchema reads columns from information_schema (which shows only the
// columns the connection's role may use), and primary and foreign keys
// from pg_catalog, since information_schema shows constraints only to a
// table's owner.
func (postgres) readSchema(ctx context.Context, db *sql.DB, schema string, names []string) (*liveSchema, error) {
	s := &liveSchema{name: schema, tables: map[string]*table{}, parents: map[string][]string{}}
	rows, err := db.QueryContext(ctx, `
SELECT table_name, column_name, data_type, udt_name, is_nullable = 'YES', coalesce(character_maximum_length, 0)
FROM information_schema.columns
WHERE table_schema = $1 AND table_name = ANY($2)
ORDER BY table_name, ordinal_position`, schema, names)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var tname string
		col := &column{}
		var udt string
		if err := rows.Scan(&tname, &col.name, &col.dataType, &udt, &col.nullable, &col.maxLen); err != nil {
			_ = rows.Close()
			return nil, err
		}
		switch udt {
		case "text", "varchar", "bpchar", "citext", "name":
			col.class, col.noNUL = classText, true
		case "int2", "int4", "int8":
			col.class = classInt
			col.intBits, _ = strconv.Atoi(udt[3:])
			col.intBits *= 8
		case "uuid":
			col.class = classUUID
		case "bool":
			col.class = classBool
		case "numeric", "float4", "float8":
			col.class = classNumber
		}
		if col.dataType == "USER-DEFINED" || col.dataType == "ARRAY" {
			col.dataType = udt
		}
		t := s.tables[tname]
		if t == nil {
			t = &table{name: tname, columns: map[string]*column{}}
			s.tables[tname] = t
		}
		t.columns[col.name] = col
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}

	rows, err = db.QueryContext(ctx, `
SELECT c.relname, a.attname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
WHERE i.indisprimary AND n.nspname = $1 AND c.relname = ANY($2)
ORDER BY c.relname, array_position(i.indkey::int2[], a.attnum)`, schema, names)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var tname, cname string
		if err := rows.Scan(&tname, &cname); err != nil {
			_ = rows.Close()
			return nil, err
		}
		if t := s.tables[tname]; t != nil {
			t.pk = append(t.pk, cname)
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}

	rows, err = db.QueryContext(ctx, `
SELECT DISTINCT cn.nspname, c.relname, pn.nspname, p.relname
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_class p ON p.oid = k.confrelid
JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE k.contype = 'f'`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var cs, cn, ps, pn string
		if err := rows.Scan(&cs, &cn, &ps, &pn); err != nil {
			_ = rows.Close()
			return nil, err
		}
		if child, parent := node(cs, cn), node(ps, pn); child != parent {
			s.parents[child] = append(s.parents[child], parent)
		}
	}
	return s, closeRows(rows)
}

// closeRows closes rows and returns the error that ended them, if any.
func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

func (postgres) table(schema, name string) string { return pgx.Identifier{schema, name}.Sanitize() }
func (postgres) column(name string) string        { return pgx.Identifier{name}.Sanitize() }
func (postgres) param(n int) string               { return "$" + strconv.Itoa(n) }

// in compares with =: PostgreSQL's deterministic collations compare text
// exactly.
func (postgres) in(q *query, _ *column, ident string, vals []any) string {
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = q.arg(v)
	}
	return ident + " IN (" + strings.Join(ph, ", ") + ")"
}

func (postgres) differs(q *query, ident string, v any) string {
	return ident + " IS DISTINCT FROM " + q.arg(v)
}

func (postgres) classify(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch class := pe.Code[:2]; {
	case pe.Code == "53300": // too_many_connections
		return connectors.RetryAfter(5*time.Second, err)
	case class == "28", // invalid authorization: rejected credentials
		class == "3D", // invalid catalog name: no such database
		class == "42", // syntax error or access rule violation: no privilege, a table gone
		class == "22", // data exception: a mask value the column cannot hold
		class == "23", // integrity constraint violation: a foreign key, a unique mask
		class == "0A": // feature not supported
		return connectors.Permanent(err)
	}
	return err
}

// pgCode returns the SQLSTATE of a PostgreSQL error.
func pgCode(err error) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, true
	}
	return "", false
}

func (postgres) retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// describe keeps the server's message with its quoted parts (values, or
// names) taken out, and adds the names of the table and constraint, which
// carry no personal data.
func (postgres) describe(err error) (string, bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return "", false
	}
	msg := fmt.Sprintf("postgres: %s (SQLSTATE %s", stripQuoted(pe.Message), pe.Code)
	if pe.TableName != "" {
		msg += ", table " + pe.TableName
	}
	if pe.ConstraintName != "" {
		msg += ", constraint " + pe.ConstraintName
	}
	msg += ")"
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		msg = "connect: " + msg
	}
	return msg, true
}
