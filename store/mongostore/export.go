package mongostore

import (
	"context"
	"encoding/json"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

// exportBatch is how many records one insert or one read carries.
const exportBatch = 100

// exportRecord is one record of a subject's data exported by an access job.
type exportRecord struct {
	JobID      string `bson:"job_id"`
	RequestID  string `bson:"request_id"`
	Collection string `bson:"collection"`
	Seq        int64  `bson:"seq"`
	// Data is the record as JSON text. Records stored before records
	// were JSON hold a BSON document here instead (see EachExportRecord).
	Data string `bson:"data"`
}

// ExportWriter stores the records one export job finds, in batches. Create it
// with [Store.NewExportWriter]; call Flush when the export ends.
type ExportWriter struct {
	s     *Store
	job   *dsr.Job
	batch []any
	enc   store.ExportEncoder
}

// NewExportWriter starts a fresh export for job: records left by an earlier
// attempt are removed first, so a retried export never duplicates.
func (s *Store) NewExportWriter(ctx context.Context, job *dsr.Job) (dsr.ExportWriter, error) {
	_, err := s.exports.DeleteMany(ctx, bson.D{{Key: "job_id", Value: job.ID}})
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
	w.batch = append(w.batch, exportRecord{JobID: w.job.ID, RequestID: w.job.RequestID, Collection: collection, Seq: seq, Data: data})
	if len(w.batch) >= exportBatch {
		return w.Flush(ctx)
	}
	return nil
}

// Flush stores the queued records.
func (w *ExportWriter) Flush(ctx context.Context) error {
	if len(w.batch) == 0 {
		return nil
	}
	if _, err := w.s.exports.InsertMany(ctx, w.batch); err != nil {
		return fmt.Errorf("store export records: %w", err)
	}
	w.batch = w.batch[:0]
	return nil
}

// EachExportRecord calls fn for every record job exported, as JSON, in the
// order they were written, reading 100 at a time so memory does not grow with
// the size of the person's data. data is valid only until fn returns.
//
// On MongoDB the job_seq index serves the sort by seq. FerretDB v1 serves
// no sort from an index: it would read all the job's records into memory (in
// the process running it) to sort them. There the records are read in the
// order they are stored, on its SQLite backend the order they were inserted
// (a table scan in rowid order), which a job's writer made the order of
// seq; each record's seq must then exceed the one before, so a record out of
// order fails the read rather than lands in the wrong place.
func (s *Store) EachExportRecord(ctx context.Context, jobID string, fn func(collection string, data json.RawMessage) error) error {
	opts := options.Find().SetBatchSize(exportBatch)
	ferret := s.gate.FerretDB()
	if !ferret {
		opts.SetSort(bson.D{{Key: "seq", Value: 1}})
	}
	cur, err := s.exports.Find(ctx, bson.D{{Key: "job_id", Value: jobID}}, opts)
	if err != nil {
		return fmt.Errorf("read export: %w", err)
	}
	defer cur.Close(ctx)
	var last int64
	for n := 0; cur.Next(ctx); n++ {
		coll, ok := cur.Current.Lookup("collection").StringValueOK()
		data, ok2 := recordJSON(cur.Current.Lookup("data"))
		if !ok || !ok2 {
			return fmt.Errorf("read export: malformed record in job %s", jobID)
		}
		if ferret {
			seq, ok := cur.Current.Lookup("seq").AsInt64OK()
			if !ok || (n > 0 && seq <= last) {
				return fmt.Errorf("read export: job %s: the server returned record %d after %d, out of order", jobID, seq, last)
			}
			last = seq
		}
		if err := fn(coll, data); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read export: %w", err)
	}
	return nil
}

// recordJSON returns a stored record as JSON: its text, or, for a record
// stored as a BSON document (before records were JSON), the document in
// relaxed Extended JSON, as exports rendered it then.
func recordJSON(v bson.RawValue) (json.RawMessage, bool) {
	if text, ok := v.StringValueOK(); ok {
		return json.RawMessage(text), true
	}
	doc, ok := v.DocumentOK()
	if !ok {
		return nil, false
	}
	js, err := bson.MarshalExtJSON(doc, false, false)
	return js, err == nil
}
