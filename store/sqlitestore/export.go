package sqlitestore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

// exportBatch is how many records one read of EachExportRecord carries.
const exportBatch = 100

// An ExportWriter commits its queued records once this many are queued, or
// once their data holds exportWriteBytes: each commit is a sync to disk,
// and the store's one writer is held while the batch is inserted, so a
// batch is large enough that syncs are few, small enough that other writes
// wait little and memory stays bounded (two batches at most: one queued,
// one committing).
const (
	exportWriteRecords = 2000
	exportWriteBytes   = 1 << 20
)

// insertExportSQL stores one record of a subject's data that job_id (of
// request request_id) exported, seq-th in its export, data its JSON text; a
// unique violation when the job's seq is taken.
const insertExportSQL = `INSERT INTO export_records (job_id, seq, request_id, collection, data) VALUES (?,?,?,?,?)`

// insertExportRecord stores one record (see insertExportSQL).
func insertExportRecord(ctx context.Context, tx execer, jobID, requestID, collection string, seq int64, data string) error {
	_, err := tx.ExecContext(ctx, insertExportSQL, jobID, seq, requestID, collection, data)
	return err
}

// exportRecord is one queued record of an ExportWriter.
type exportRecord struct {
	collection string
	seq        int64
	data       string
}

// ExportWriter stores the records one export job finds, in batches. Create
// it with [Store.NewExportWriter]; call Flush when the export ends. A full
// batch is committed while the export goes on reading: WriteRecord waits
// only for the batch before it, and returns its error, if any.
type ExportWriter struct {
	s     *Store
	job   *dsr.Job
	batch []exportRecord
	bytes int
	// spare is the batch being committed, reused once it is.
	spare []exportRecord
	// pending receives the outcome of the batch being committed; nil when
	// none is.
	pending chan error
	enc     store.ExportEncoder
}

var _ dsr.ExportWriter = (*ExportWriter)(nil)

// NewExportWriter starts a fresh export for job: records left by an
// earlier attempt are removed first, so a retried export never duplicates.
func (s *Store) NewExportWriter(ctx context.Context, job *dsr.Job) (dsr.ExportWriter, error) {
	err := s.write(ctx, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM export_records WHERE job_id = ?`, job.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("clear earlier export: %w", err)
	}
	return &ExportWriter{s: s, job: job}, nil
}

// WriteRecord queues one record found in collection, encoded and held to
// the export's order by [store.ExportEncoder.Next] before it returns (the
// caller may reuse doc). The writer keeps at most two batches in memory:
// the one it fills and the one being committed.
func (w *ExportWriter) WriteRecord(ctx context.Context, collection string, doc any) error {
	data, seq, err := w.enc.Next(collection, doc)
	if err != nil {
		return err
	}
	w.batch = append(w.batch, exportRecord{collection: collection, seq: seq, data: data})
	w.bytes += len(data)
	if len(w.batch) >= exportWriteRecords || w.bytes >= exportWriteBytes {
		return w.send(ctx)
	}
	return nil
}

// send waits for the batch being committed, then queues the queued
// records for the store's writer, to commit in one transaction. The write
// is queued before send returns, so it comes before any write queued after
// it (a retry's NewExportWriter, clearing this attempt's records).
func (w *ExportWriter) send(ctx context.Context) error {
	if err := w.wait(); err != nil {
		return err
	}
	if len(w.batch) == 0 {
		return nil
	}
	batch, jobID, requestID := w.batch, w.job.ID, w.job.RequestID
	w.batch, w.spare, w.bytes = w.spare[:0], batch, 0
	if w.s.w == nil {
		return fmt.Errorf("store export records: %w", errReadOnly)
	}
	op := &writeOp{ctx: ctx, done: make(chan error, 1), fn: func(tx *wtx) error {
		return insertExportRecords(ctx, tx, jobID, requestID, batch)
	}}
	select {
	case w.s.writes <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.s.closed:
		return fmt.Errorf("store export records: %w", errClosed)
	}
	w.pending = op.done
	return nil
}

// Discard waits for the batch being committed, if any, and drops the
// queued records: the export failed, and nothing of it is left in flight.
func (w *ExportWriter) Discard() {
	_ = w.wait()
	w.batch, w.bytes = w.batch[:0], 0
}

// exportInsertRows is how many records one INSERT statement carries (five
// arguments each): the driver prepares a statement at each execution, so
// one statement stores many.
const exportInsertRows = 100

// exportInsertSQL is the INSERT of exportInsertRows records.
var exportInsertSQL = exportInsertOf(exportInsertRows)

// exportInsertOf returns the INSERT of n records.
func exportInsertOf(n int) string {
	return `INSERT INTO export_records (job_id, seq, request_id, collection, data) VALUES ` +
		strings.TrimSuffix(strings.Repeat(`(?,?,?,?,?),`, n), ",")
}

// insertExportRecords stores batch, records job jobID of request
// requestID exported, in tx.
func insertExportRecords(ctx context.Context, tx *wtx, jobID, requestID string, batch []exportRecord) error {
	args := make([]any, 0, 5*min(len(batch), exportInsertRows))
	for len(batch) > 0 {
		n := min(len(batch), exportInsertRows)
		q := exportInsertSQL
		if n < exportInsertRows {
			q = exportInsertOf(n)
		}
		args = args[:0]
		for _, r := range batch[:n] {
			args = append(args, jobID, r.seq, requestID, r.collection, r.data)
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		batch = batch[n:]
	}
	return nil
}

// wait waits for the batch being committed, if any, and returns its error.
func (w *ExportWriter) wait() error {
	if w.pending == nil {
		return nil
	}
	err := StorageError(<-w.pending)
	w.pending = nil
	if err != nil {
		return fmt.Errorf("store export records: %w", err)
	}
	return nil
}

// Flush stores the queued records and returns once every record written
// is committed, or the first error of a batch.
func (w *ExportWriter) Flush(ctx context.Context) error {
	if err := w.send(ctx); err != nil {
		return err
	}
	return w.wait()
}

// EachExportRecord calls fn for every record job jobID exported, as JSON,
// in the order they were written, reading 100 at a time (by seq, from the
// primary key) so memory does not grow with the size of the person's data.
// data is valid only until fn returns.
func (s *Store) EachExportRecord(ctx context.Context, jobID string, fn func(collection string, data json.RawMessage) error) error {
	type record struct {
		collection string
		data       []byte
	}
	page := make([]record, 0, exportBatch)
	after := int64(math.MinInt64)
	for {
		rows, err := s.r.QueryContext(ctx, `SELECT seq, collection, data FROM export_records WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
			jobID, after, exportBatch)
		if err != nil {
			return fmt.Errorf("read export: %w", err)
		}
		page = page[:0]
		for rows.Next() {
			var r record
			if err := rows.Scan(&after, &r.collection, &r.data); err != nil {
				rows.Close()
				return fmt.Errorf("read export: %w", err)
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read export: %w", err)
		}
		for _, r := range page {
			if err := fn(r.collection, r.data); err != nil {
				return err
			}
		}
		if len(page) < exportBatch {
			return nil
		}
	}
}
