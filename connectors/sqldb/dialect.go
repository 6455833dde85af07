package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// dialect is what differs between PostgreSQL and MySQL.
type dialect interface {
	// open returns a pool for dsn, which it does not contact yet, and the
	// schema the DSN names ("" when the server must say).
	open(dsn string) (*sql.DB, string, error)
	// currentSchema asks the server for the schema unqualified names mean.
	currentSchema(ctx context.Context, db *sql.DB) (string, error)
	// readSchema reads the columns and primary keys of the named tables of
	// schema, and the foreign keys of the database.
	readSchema(ctx context.Context, db *sql.DB, schema string, names []string) (*liveSchema, error)
	// table and column quote identifiers that the live schema holds.
	table(schema, name string) string
	column(name string) string
	// param is the placeholder of the n-th argument (from 1).
	param(n int) string
	// in returns the condition that col, quoted as ident, equals one of
	// vals exactly (no case folding or trailing-space padding).
	in(q *query, col *column, ident string, vals []any) string
	// differs returns the condition that col, quoted as ident, does not
	// hold v (null-safe).
	differs(q *query, ident string, v any) string
	// classify returns err as the worker needs it: connectors.Permanent for
	// what retrying cannot fix, connectors.RetryAfter when the server is
	// full, else err.
	classify(err error) error
	// retryable reports a deadlock or serialization failure, after which
	// the transaction is run again.
	retryable(err error) bool
	// describe renders a driver error without the values it may quote;
	// ok is false for errors that are not the driver's.
	describe(err error) (msg string, ok bool)
	// rejected reports the server refusing the credentials.
	rejected(err error) bool
	// privileged reports whether the connection's user holds privilege
	// priv (SELECT, DELETE, UPDATE) on the table.
	privileged(ctx context.Context, db *sql.DB, schema, table, priv string) (bool, error)
}

// query builds one parameterised statement.
type query struct {
	d    dialect
	b    strings.Builder
	args []any
}

// arg adds v as the next argument and returns its placeholder.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return q.d.param(len(q.args))
}

func (q *query) add(parts ...string) *query {
	for _, p := range parts {
		q.b.WriteString(p)
	}
	return q
}

func (q *query) String() string { return q.b.String() }

// dbError is a driver error rendered without the values it may quote (a
// MySQL duplicate-key message quotes the key). It unwraps to the driver's
// error, so classification still sees it.
type dbError struct {
	err error
	msg string
}

func (e *dbError) Error() string { return e.msg }
func (e *dbError) Unwrap() error { return e.err }

// quoted matches a quoted part of a message: a value, or an identifier.
var quoted = regexp.MustCompile(`"[^"]*"|'[^']*'`)

// stripQuoted replaces the quoted parts of msg by "…".
func stripQuoted(msg string) string {
	return quoted.ReplaceAllString(msg, `"…"`)
}

// wrap returns err rendered safely for logs (see dbError); nil stays nil.
func wrap(d dialect, err error) error {
	if err == nil {
		return nil
	}
	var de *dbError
	if errors.As(err, &de) {
		return err
	}
	msg, ok := d.describe(err)
	if !ok {
		msg = stripQuoted(err.Error())
	}
	return &dbError{err: err, msg: msg}
}

// param returns identity value v as the argument that col is compared
// with, or false when no row can hold it there: an id that is not the
// canonical decimal form of an integer in range ("007" must not match
// another person's 7), not a UUID, or text the column cannot store (a NUL
// in PostgreSQL, invalid UTF-8).
func (c *column) param(v string) (any, bool) {
	if !utf8.ValidString(v) {
		return nil, false
	}
	switch c.class {
	case classText:
		if c.noNUL && strings.IndexByte(v, 0) >= 0 {
			return nil, false
		}
		if c.maxLen > 0 && int64(utf8.RuneCountInString(v)) > c.maxLen {
			return nil, false // longer than any value the column holds
		}
		return v, true
	case classInt:
		bits := c.intBits
		if bits == 0 {
			bits = 64
		}
		if c.unsigned {
			n, err := strconv.ParseUint(v, 10, bits)
			if err != nil || strconv.FormatUint(n, 10) != v {
				return nil, false
			}
			return n, true
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil || strconv.FormatInt(n, 10) != v {
			return nil, false
		}
		return n, true
	case classUUID:
		if !uuidPattern.MatchString(v) {
			return nil, false
		}
		return strings.ToLower(v), true
	}
	return nil, false
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// loadTimeout bounds connecting and reading the schema when a connector is
// built, unless the caller's context ends sooner.
const loadTimeout = 30 * time.Second

// poolDefaults sets the pool's limits.
func poolDefaults(db *sql.DB) {
	db.SetMaxOpenConns(10)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(30 * time.Minute)
}
