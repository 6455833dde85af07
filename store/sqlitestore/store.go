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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

var _ store.Store = (*Store)(nil)

// walSizeLimit is the size the WAL file is cut back to after a checkpoint.
const walSizeLimit = 16 << 20

// probeMinFree is the free space below which ProbeWrite reports the disk
// full: a tiny write can still land in space the WAL reuses while the
// writes of requests fail.
const probeMinFree = 16 << 20

// busyTimeout is how long a write waits, by default, for another process's
// write transaction on the same file before it fails.
const busyTimeout = 10 * time.Second

// Options tunes a store; the zero value is the default.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Readers caps the connections that read at once; 0 means
	// max(4, GOMAXPROCS).
	Readers int
	// BusyTimeout is how long a write waits for another process's write
	// transaction before it fails with dsr.ErrStoreUnavailable; 0 means
	// 10 s.
	BusyTimeout time.Duration
	// ReadOnly opens an existing file to read only (dsar migrate's
	// source): nothing is created or written, not even the journal mode,
	// and every write fails.
	ReadOnly bool
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
	// file is the store's file as opened: a write refuses to go on when
	// the path names another file (see checkFile).
	file os.FileInfo
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
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = busyTimeout
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	now := o.Now
	s := &Store{path: abs, now: func() time.Time { return now().UTC().Truncate(time.Millisecond) }}
	if o.ReadOnly {
		if s.file, err = os.Stat(abs); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		if s.r, err = open(o.driver, abs, "deferred", true, o.BusyTimeout); err != nil {
			return nil, err
		}
		s.r.SetMaxOpenConns(o.Readers)
		return s, nil
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
	s.file, err = f.Stat()
	_ = f.Close()
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	if s.w, err = open(o.driver, abs, "immediate", false, o.BusyTimeout); err != nil {
		return nil, err
	}
	s.w.SetMaxOpenConns(1)
	if s.r, err = open(o.driver, abs, "deferred", true, o.BusyTimeout); err != nil {
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
func open(driver, path, txlock string, readOnly bool, busy time.Duration) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	if readOnly {
		q.Add("_pragma", "query_only(ON)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		// FULL: a transaction is on disk when it commits, so a request
		// answered 202 survives a power cut too, not only a crash.
		q.Add("_pragma", "synchronous(FULL)")
		// The WAL is cut back to this size once checkpointed: a long
		// read (a report, a backup) lets it grow, not stay grown.
		q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
		// Deleted and rewritten rows are overwritten with zeros, so that
		// identities, notes and correction values purged by retention
		// leave no copy in free pages or in the slack of overflow pages.
		q.Add("_pragma", "secure_delete(ON)")
	}
	q.Add("_pragma", "foreign_keys(OFF)")
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
	if err := s.upgradeExportRecords(ctx); err != nil {
		return fmt.Errorf("sqlite store %s: export_records with rowids: %w", s.path, StorageError(err))
	}
	return nil
}

// upgradeExportRecords makes export_records, in a file made when it was a
// WITHOUT ROWID table, the table with rowids the schema now creates (see
// schema): in one transaction, the old table renamed, the new one created,
// the rows copied, the old one dropped. Exports are kept no longer than
// DSAR_RETENTION_EXPORTS, so the copy is bounded; it runs once, at the
// first start of a dsar that has the new schema (another process starting
// meanwhile waits for it, then finds the table done).
func (s *Store) upgradeExportRecords(ctx context.Context) error {
	withoutRowid := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) (bool, error) {
		var def string
		err := q.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'export_records'`).Scan(&def)
		return strings.Contains(strings.ToUpper(def), "WITHOUT ROWID"), err
	}
	if old, err := withoutRowid(s.w); err != nil || !old {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if old, err := withoutRowid(tx); err != nil || !old {
		return err
	}
	for _, q := range []string{
		`DROP INDEX IF EXISTS export_records_request`,
		`ALTER TABLE export_records RENAME TO export_records_without_rowid`,
		schema, // creates export_records and its index, and nothing else
		`INSERT INTO export_records (job_id, seq, request_id, collection, data)
			SELECT job_id, seq, request_id, collection, data FROM export_records_without_rowid ORDER BY job_id, seq`,
		`DROP TABLE export_records_without_rowid`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Ping checks that the file answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.checkFile(); err != nil {
		return err
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return nil
}

// checkFile returns dsr.ErrStoreUnavailable when the store's path no
// longer names the file the store opened (it was removed, or replaced):
// SQLite would go on writing to the file it holds, lost at the next start.
func (s *Store) checkFile() error {
	fi, err := os.Stat(s.path)
	if err == nil && os.SameFile(fi, s.file) {
		return nil
	}
	return fmt.Errorf("%w: the store's file %s was removed or replaced while dsar ran; nothing more is written to it: restore it, or restart dsar",
		dsr.ErrStoreUnavailable, s.path)
}

// ProbeWrite rewrites one tiny row and reports whether the store can
// write: dsr.ErrStorageFull while its disk is full, or has less than
// 16 MiB free (where the tiny row may still fit while requests do not).
func (s *Store) ProbeWrite(ctx context.Context) error {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(s.path), &fs); err == nil && fs.Bavail*uint64(fs.Bsize) < probeMinFree {
		return fmt.Errorf("probe write: %w: %d KiB free on the store's disk", dsr.ErrStorageFull, fs.Bavail*uint64(fs.Bsize)>>10)
	}
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
		if s.w == nil { // read-only
			err = s.r.Close()
			return
		}
		close(s.closed)
		<-s.writerDone
		err = errors.Join(s.r.Close(), s.w.Close())
	})
	return err
}

// StorageError returns err marked with dsr.ErrStorageFull when SQLite says
// its disk is full (SQLITE_FULL), with dsr.ErrStoreUnavailable when the
// file stayed locked by another process past the busy timeout
// (SQLITE_BUSY), else err unchanged; nil stays nil.
func StorageError(err error) error {
	if err == nil || errors.Is(err, dsr.ErrStorageFull) {
		return err
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w: %w", dsr.ErrStorageFull, err)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		// Another process held the file past the busy timeout.
		return fmt.Errorf("%w: %w", dsr.ErrStoreUnavailable, err)
	}
	return err
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
