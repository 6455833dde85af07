package sqlitestore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

// exportBatch is how many records one write or one read carries.
const exportBatch = 100

// insertExportRecord stores one record of a subject's data that job jobID
// (of request requestID) exported, seq-th in its export, data its JSON
// text; a unique violation when the job's seq is taken.
func insertExportRecord(ctx context.Context, tx execer, jobID, requestID, collection string, seq int64, data string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO export_records (job_id, seq, request_id, collection, data) VALUES (?,?,?,?,?)`,
		jobID, seq, requestID, collection, data)
	return err
}

// exportRecord is one queued record of an ExportWriter.
type exportRecord struct {
	collection string
	seq        int64
	data       string
}

// ExportWriter stores the records one export job finds, in batches. Create
// it with [Store.NewExportWriter]; call Flush when the export ends.
type ExportWriter struct {
	s     *Store
	job   *dsr.Job
	batch []exportRecord
	enc   store.ExportEncoder
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
// caller may reuse doc). The writer keeps at most one batch in memory.
func (w *ExportWriter) WriteRecord(ctx context.Context, collection string, doc any) error {
	data, seq, err := w.enc.Next(collection, doc)
	if err != nil {
		return err
	}
	w.batch = append(w.batch, exportRecord{collection: collection, seq: seq, data: data})
	if len(w.batch) >= exportBatch {
		return w.Flush(ctx)
	}
	return nil
}

// Flush stores the queued records, in one transaction.
func (w *ExportWriter) Flush(ctx context.Context) error {
	if len(w.batch) == 0 {
		return nil
	}
	err := w.s.write(ctx, func(tx *wtx) error {
		for _, r := range w.batch {
			if err := insertExportRecord(ctx, tx, w.job.ID, w.job.RequestID, r.collection, r.seq, r.data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store export records: %w", err)
	}
	w.batch = w.batch[:0]
	return nil
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
