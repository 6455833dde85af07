package sqlitestore

// TEMPORARY (branch migrate): minimal versions of insertJob and
// insertExportRecord, which branch sqljobs writes in jobs.go and export.go.
// The coordinator deletes this file when sqljobs is merged.

import (
	"context"

	"github.com/dsar-project/dsar/dsr"
)

// insertJob stores a new job; a unique violation when its id is taken.
func insertJob(ctx context.Context, tx execer, j *dsr.Job) error {
	doc, err := encode(j)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO jobs (id, request_id, status, updated_at, lease_until, poll_at, finished_at, doc)
		VALUES (?,?,?,?,?,?,?,?)`, j.ID, j.RequestID, string(j.Status), ms(j.UpdatedAt), msp(j.LeaseUntil), msp(j.PollAt), msp(j.FinishedAt), doc)
	return err
}

// insertExportRecord stores one export record; a unique violation when its
// job id and seq are taken.
func insertExportRecord(ctx context.Context, tx execer, jobID, requestID, collection string, seq int64, data string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO export_records (job_id, seq, request_id, collection, data) VALUES (?,?,?,?,?)`,
		jobID, seq, requestID, collection, data)
	return err
}
