// Package sqlenv gives tests the SQL servers of the machine they run on,
// each test a database of its own, dropped when it ends:
//
//   - DSAR_TEST_POSTGRES_URL: a PostgreSQL server, default
//     postgres://postgres@127.0.0.1:5432/test?sslmode=disable (trust).
//   - DSAR_TEST_MYSQL_DSN: a MySQL or MariaDB server, default
//     root@tcp(127.0.0.1:3306)/test (empty password).
//
// A server that does not answer skips the test with a message saying so,
// unless DSAR_TEST_REQUIRE_SQL=1 (set by CI), which fails it instead.
package sqlenv

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/dsar-project/dsar/internal/testenv"
)

// Server is one SQL server the tests use.
type Server struct {
	// Kind is "postgres" or "mysql".
	Kind string
	// DSN reaches the server's default database as an administrator.
	DSN string
}

var (
	pgOnce, myOnce sync.Once
	pgErr, myErr   error
)

// PostgresURL returns the test PostgreSQL server's URL.
func PostgresURL() string {
	if u := os.Getenv("DSAR_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// MySQLDSN returns the test MySQL server's DSN.
func MySQLDSN() string {
	if d := os.Getenv("DSAR_TEST_MYSQL_DSN"); d != "" {
		return d
	}
	return "root@tcp(127.0.0.1:3306)/test"
}

// Postgres returns the test PostgreSQL server, or skips (or, under
// DSAR_TEST_REQUIRE_SQL=1, fails) the test when it does not answer.
func Postgres(t testing.TB) Server {
	t.Helper()
	s := Server{Kind: "postgres", DSN: PostgresURL()}
	pgOnce.Do(func() { pgErr = ping(s) })
	unavailable(t, s, pgErr, "DSAR_TEST_POSTGRES_URL")
	return s
}

// MySQL returns the test MySQL (or MariaDB) server, as Postgres does.
func MySQL(t testing.TB) Server {
	t.Helper()
	s := Server{Kind: "mysql", DSN: MySQLDSN()}
	myOnce.Do(func() { myErr = ping(s) })
	unavailable(t, s, myErr, "DSAR_TEST_MYSQL_DSN")
	return s
}

func unavailable(t testing.TB, s Server, err error, env string) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("DSAR_TEST_REQUIRE_SQL") == "1" {
		t.Fatalf("sqlenv: no %s server answers (%v) and DSAR_TEST_REQUIRE_SQL=1", s.Kind, err)
	}
	t.Skipf("sqlenv: no %s server answers (%v): set %s to one to run this test", s.Kind, err, env)
}

func ping(s Server) error {
	db, err := s.Open(s.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// Open opens dsn with the server's driver.
func (s Server) Open(dsn string) (*sql.DB, error) {
	if s.Kind == "postgres" {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, err
		}
		return stdlib.OpenDB(*cfg), nil
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// admin opens the server's default database, closed when the test ends.
func (s Server) admin(t testing.TB) *sql.DB {
	t.Helper()
	db, err := s.Open(s.DSN)
	if err != nil {
		t.Fatalf("sqlenv: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Exec runs statements on the server's default database as an
// administrator, failing the test on an error.
func (s Server) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	db := s.admin(t)
	for _, st := range stmts {
		if _, err := db.ExecContext(context.Background(), st); err != nil {
			t.Fatalf("sqlenv: %s: %v", st, err)
		}
	}
}

// Database is a database of one test: on MySQL a database, on PostgreSQL
// a schema of the server's database (creating a PostgreSQL database takes
// over a second; a schema, a moment), which the DSN's search_path makes
// the connection's current schema.
type Database struct {
	Server
	// Name is the database's (schema's) name; DSN reaches it as an
	// administrator.
	Name string
	DSN  string
	// DB is a pool on it, closed when the test ends.
	DB *sql.DB
}

// NewDatabase creates a uniquely named database (schema), dropped with
// everything in it when the test ends.
func (s Server) NewDatabase(t testing.TB) *Database {
	t.Helper()
	name := testenv.Name("dsar_t")
	create, drop := "CREATE DATABASE "+name, "DROP DATABASE IF EXISTS "+name
	if s.Kind == "postgres" {
		create, drop = "CREATE SCHEMA "+name, "DROP SCHEMA IF EXISTS "+name+" CASCADE"
	}
	s.Exec(t, create)
	t.Cleanup(func() {
		db, err := s.Open(s.DSN)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.ExecContext(context.Background(), drop)
	})
	d := &Database{Server: s, Name: name, DSN: s.WithDatabase(t, s.DSN, name)}
	db, err := s.Open(d.DSN)
	if err != nil {
		t.Fatalf("sqlenv: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	d.DB = db
	return d
}

// WithDatabase returns dsn reaching database name (on PostgreSQL, schema
// name of the same database) instead of its own.
func (s Server) WithDatabase(t testing.TB, dsn, name string) string {
	t.Helper()
	if s.Kind == "mysql" {
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatalf("sqlenv: %v", err)
		}
		cfg.DBName = name
		return cfg.FormatDSN()
	}
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("sqlenv: %v", err)
		}
		q := u.Query()
		q.Set("search_path", name)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + name
}

// WithUser returns dsn with user and password instead of its own.
func (s Server) WithUser(t testing.TB, dsn, user, password string) string {
	t.Helper()
	if s.Kind == "mysql" {
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatalf("sqlenv: %v", err)
		}
		cfg.User, cfg.Passwd = user, password
		return cfg.FormatDSN()
	}
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("sqlenv: %v", err)
		}
		u.User = url.UserPassword(user, password)
		return u.String()
	}
	return fmt.Sprintf("%s user=%s password=%s", dsn, user, password)
}

// Exec runs statements on the test's database, failing the test on an
// error.
func (d *Database) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	for _, st := range stmts {
		if _, err := d.DB.ExecContext(context.Background(), st); err != nil {
			t.Fatalf("sqlenv: %s: %v", st, err)
		}
	}
}

// Count runs a query returning one number.
func (d *Database) Count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := d.DB.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("sqlenv: %s: %v", query, err)
	}
	return n
}
