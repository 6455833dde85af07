package sealedstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/envelope"
)

// WithChunkBytes returns s with chunks of n bytes of records: tests make
// exports of many chunks with few records.
func WithChunkBytes(s *Store, n int) *Store {
	c := *s
	c.chunkBytes = n
	return &c
}

// NewRecordExportWriter returns a writer of job's export in the form
// exports were stored in before chunks: each record sealed alone (aadExport)
// and stored as a JSON string of base64, then a sealed end record counting
// them. It is the writer dsar had, kept to make exports of that form,
// which EachExportRecord must still read.
func NewRecordExportWriter(ctx context.Context, s *Store, job *dsr.Job) (dsr.ExportWriter, error) {
	xk, err := s.requestKey(ctx, job.RequestID, "x:")
	if err != nil {
		return nil, err
	}
	w, err := s.Store.NewExportWriter(ctx, job)
	if err != nil {
		return nil, err
	}
	return &recordWriter{ExportWriter: w, key: xk, jobID: job.ID}, nil
}

type recordWriter struct {
	dsr.ExportWriter
	key   *envelope.DataKey
	jobID string
	buf   bytes.Buffer
	n     int
	ended bool
}

func (w *recordWriter) Flush(ctx context.Context) error {
	if !w.ended {
		if err := w.write(ctx, endCollection, exportEnd{Records: w.n}); err != nil {
			return err
		}
		w.ended = true
	}
	return w.ExportWriter.Flush(ctx)
}

func (w *recordWriter) WriteRecord(ctx context.Context, collection string, doc any) error {
	if w.ended || collection == endCollection {
		return fmt.Errorf("export record in %q: after the export's end", collection)
	}
	return w.write(ctx, collection, doc)
}

func (w *recordWriter) write(ctx context.Context, collection string, doc any) error {
	w.buf.Reset()
	enc := json.NewEncoder(&w.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	c, err := envelope.Seal(w.key, bytes.TrimSuffix(w.buf.Bytes(), []byte("\n")), aadExport(w.jobID, collection, w.n+1))
	if err != nil {
		return err
	}
	if err := w.ExportWriter.WriteRecord(ctx, collection, b64.EncodeToString(c)); err != nil {
		return err
	}
	w.n++
	return nil
}
