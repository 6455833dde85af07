package sqlitestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"slices"
	"strings"
	"sync"

	"modernc.org/sqlite"
)

// tracedDriver is the SQLite driver, recording every statement the store
// sends through it (text and first arguments), for the plan checks.
const tracedDriver = "sqlite-traced"

func init() {
	sql.Register(tracedDriver, traceDriver{&sqlite.Driver{}})
}

// traced holds the statements sent through tracedDriver, by text, each
// with the arguments of its first use.
var traced = struct {
	sync.Mutex
	stmts map[string][]any
}{stmts: map[string][]any{}}

// tracedStatements returns the statements recorded so far, sorted, and
// forgets them.
func tracedStatements() map[string][]any {
	traced.Lock()
	defer traced.Unlock()
	out := traced.stmts
	traced.stmts = map[string][]any{}
	return out
}

func record(query string, args []driver.NamedValue) {
	traced.Lock()
	defer traced.Unlock()
	if _, ok := traced.stmts[query]; ok {
		return
	}
	vals := make([]any, len(args))
	for i, a := range args {
		vals[i] = a.Value
	}
	traced.stmts[query] = vals
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// oneLine is query on one line, for messages.
func oneLine(query string) string {
	return strings.Join(strings.Fields(query), " ")
}

type traceDriver struct{ base driver.Driver }

func (d traceDriver) Open(name string) (driver.Conn, error) {
	c, err := d.base.Open(name)
	if err != nil {
		return nil, err
	}
	return traceConn{c}, nil
}

// traceConn forwards to the driver's connection, recording statements.
// modernc's connection implements each interface used below.
type traceConn struct{ c driver.Conn }

func (t traceConn) Prepare(query string) (driver.Stmt, error) { return t.c.Prepare(query) }
func (t traceConn) Close() error                              { return t.c.Close() }

//nolint:staticcheck // driver.Conn requires Begin.
func (t traceConn) Begin() (driver.Tx, error) { return t.c.Begin() }

func (t traceConn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	return t.c.(driver.ConnBeginTx).BeginTx(ctx, o)
}

func (t traceConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	record(query, nil)
	return t.c.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (t traceConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	record(query, args)
	return t.c.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (t traceConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	record(query, args)
	return t.c.(driver.QueryerContext).QueryContext(ctx, query, args)
}

func (t traceConn) Ping(ctx context.Context) error { return t.c.(driver.Pinger).Ping(ctx) }
