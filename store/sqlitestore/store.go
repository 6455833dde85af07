package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

var _ store.Store = (*Store)(nil)

// busyTimeout is how long a write waits for another process's write
// transaction on the same file before it fails.
const busyTimeout = 10 * time.Second

// Options tunes a store; the zero value is the default.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Readers caps the connections that read at once; 0 means
	// max(4, GOMAXPROCS).
	Readers int
	// driver is the database/sql driver's name; "" means "sqlite" (a
	// test's tracing driver wraps it).
	driver string
}

// Store keeps requests, jobs, audit events and exported records in one
// SQLite file. It is safe for concurrent use, and several processes may
// open the same file.
type Store struct {
	path string
	// w is the one connection that writes: its transactions begin
	// IMMEDIATE, taking the write lock at once, so a transaction that
	// reads then writes never fails to upgrade its lock.
	w *sql.DB
	// r are the connections that read (query_only).
	r   *sql.DB
	now func() time.Time
	// writes feeds the writer (see write); closed stops it and
	// writerDone says it has.
	writes     chan *writeOp
	closed     chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once
	// commits counts the transactions the writer committed.
	commits atomic.Int64
}

// Open opens (creating when missing) the store in the SQLite file at path
// and creates its schema.
func Open(ctx context.Context, path string, o Options) (*Store, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.driver == "" {
		o.driver = "sqlite"
	}
	if o.Readers <= 0 {
		o.Readers = max(4, runtime.GOMAXPROCS(0))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	// The file holds personal data: only its owner reads it (SQLite gives
	// its -wal and -shm files the same mode).
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	_ = f.Close()
	now := o.Now
	s := &Store{path: abs, now: func() time.Time { return now().UTC().Truncate(time.Millisecond) }}
	if s.w, err = open(o.driver, abs, "immediate", false); err != nil {
		return nil, err
	}
	s.w.SetMaxOpenConns(1)
	if s.r, err = open(o.driver, abs, "deferred", true); err != nil {
		_ = s.w.Close()
		return nil, err
	}
	s.r.SetMaxOpenConns(o.Readers)
	s.r.SetMaxIdleConns(o.Readers)
	s.writes, s.closed, s.writerDone = make(chan *writeOp), make(chan struct{}), make(chan struct{})
	go s.writer()
	if err := s.Prepare(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// open returns a pool of connections to the file at path, through the
// database/sql driver of that name.
func open(driver, path, txlock string, readOnly bool) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL: a transaction is on disk when it commits, so a request
	// answered 202 survives a power cut too, not only a crash.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(OFF)")
	if readOnly {
		q.Add("_pragma", "query_only(ON)")
	}
	q.Set("_txlock", txlock)
	db, err := sql.Open(driver, (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}).String())
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	return db, nil
}

// Path is the file the store keeps its data in.
func (s *Store) Path() string { return s.path }

// Prepare creates the schema; it is idempotent.
func (s *Store) Prepare(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("sqlite store %s: create schema: %w", s.path, StorageError(err))
	}
	return nil
}

// Ping checks that the file answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return nil
}

// ProbeWrite rewrites one tiny row and reports whether the store can
// write: dsr.ErrStorageFull while its disk is full.
func (s *Store) ProbeWrite(ctx context.Context) error {
	err := s.write(ctx, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO health (id, at) VALUES ('probe', ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`, ms(s.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("probe write: %w", StorageError(err))
	}
	return nil
}

// Close closes the file, once the write in progress (if any) is done;
// writes after Close fail.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		<-s.writerDone
		err = errors.Join(s.r.Close(), s.w.Close())
	})
	return err
}

// StorageError returns err marked with dsr.ErrStorageFull when SQLite says
// its disk is full (SQLITE_FULL, or the system's ENOSPC), else err
// unchanged; nil stays nil.
func StorageError(err error) error {
	if err == nil || errors.Is(err, dsr.ErrStorageFull) {
		return err
	}
	var se *sqlite.Error
	full := errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL
	if !full {
		return err
	}
	return fmt.Errorf("%w: %w", dsr.ErrStorageFull, err)
}

// isUniqueViolation reports whether err is a primary key or unique
// constraint's refusal.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE)
}

// ms is t in Unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// msp is *t in Unix milliseconds, or NULL.
func msp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}
