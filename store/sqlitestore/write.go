package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// maxBatch bounds how many writes one transaction commits together.
const maxBatch = 64

// writeOp is one write waiting for the writer.
type writeOp struct {
	ctx  context.Context
	fn   func(tx *wtx) error
	done chan error
}

// wtx is a write transaction as a write sees it. Its statements run to
// their end whatever becomes of the caller's context: SQLite rolls back a
// whole transaction when one of its statements is interrupted, and the
// transaction carries other callers' writes too.
type wtx struct{ tx *sql.Tx }

func (w *wtx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return w.tx.ExecContext(context.WithoutCancel(ctx), query, args...)
}

func (w *wtx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return w.tx.QueryContext(context.WithoutCancel(ctx), query, args...)
}

func (w *wtx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return w.tx.QueryRowContext(context.WithoutCancel(ctx), query, args...)
}

// write runs fn in a write transaction and returns once it is committed
// (or failed: then nothing of it is stored). Writes queue for the process's
// one writer, which commits the writes waiting together in one
// transaction, each in a savepoint of its own: a write that fails is
// undone alone, and the rest share one sync to disk (group commit). A
// write whose ctx ends before the writer starts it is not run.
func (s *Store) write(ctx context.Context, fn func(tx *wtx) error) error {
	if s.w == nil {
		return errReadOnly
	}
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return errClosed
	}
	return StorageError(<-op.done) // once started, a write is waited for: its outcome is known
}

// writer commits the queued writes, in batches, until the store closes.
func (s *Store) writer() {
	defer close(s.writerDone)
	batch := make([]*writeOp, 0, maxBatch)
	for {
		select {
		case op := <-s.writes:
			batch = append(batch[:0], op)
		case <-s.closed:
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case op := <-s.writes:
				batch = append(batch, op)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

// commit runs batch in one transaction and tells each write its outcome.
func (s *Store) commit(batch []*writeOp) {
	errs := make([]error, len(batch))
	finish := func(err error) {
		for i, op := range batch {
			if errs[i] == nil {
				errs[i] = err
			}
			op.done <- errs[i]
		}
	}
	if err := s.checkFile(); err != nil {
		finish(err)
		return
	}
	tx, err := s.w.BeginTx(context.Background(), nil)
	if err != nil {
		finish(fmt.Errorf("begin: %w", err))
		return
	}
	w := &wtx{tx: tx}
	if len(batch) == 1 {
		// Alone, a write needs no savepoint: its failure undoes the
		// transaction.
		op := batch[0]
		err := op.ctx.Err()
		if err == nil {
			err = op.fn(w)
		}
		if err != nil {
			_ = tx.Rollback()
			op.done <- err
			return
		}
		err = tx.Commit()
		s.commits.Add(1)
		if err != nil {
			err = fmt.Errorf("commit: %w", err)
		}
		op.done <- err
		return
	}
	ran := 0
	for i, op := range batch {
		if err := op.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := tx.Exec(`SAVEPOINT w`); err != nil {
			errs[i] = err
			continue
		}
		if err := op.fn(w); err != nil {
			errs[i] = err
			if _, rerr := tx.Exec(`ROLLBACK TO w`); rerr != nil {
				// The transaction is unusable: nothing of the batch is kept.
				_ = tx.Rollback()
				finish(fmt.Errorf("undo a failed write: %w", rerr))
				return
			}
		} else {
			ran++
		}
		if _, err := tx.Exec(`RELEASE w`); err != nil {
			_ = tx.Rollback()
			finish(fmt.Errorf("release a write: %w", err))
			return
		}
	}
	if ran == 0 {
		_ = tx.Rollback()
		finish(nil)
		return
	}
	err = tx.Commit()
	s.commits.Add(1)
	if err != nil {
		// Nothing of the batch is stored; each write that had succeeded
		// learns why.
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("commit: %w", err)
			}
		}
	}
	finish(nil)
}

// errReadOnly is the error of a write to a store opened ReadOnly.
var errReadOnly = errors.New("sqlite store: opened read-only")

// errClosed is the error of a write after Close.
var errClosed = errors.New("sqlite store: closed")
