package sealedstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/store"
)

// An export kept as an object is one object per job, named
// "exports/<request id>/<job id, path-escaped>.dsar": the records as JSON
// lines, {"c": collection, "d": record}, encrypted as one envelope stream
// (64 KiB segments, AES-256-GCM) under the request's export key and bound
// to the job's id. A cut, reordered or altered object fails to read.

func objectPrefix(requestID string) string { return "exports/" + url.PathEscape(requestID) + "/" }

func objectName(jobID string) string {
	return objectPrefix(dsr.JobRequestID(jobID)) + url.PathEscape(jobID) + ".dsar"
}

func aadObject(jobID string) []byte { return []byte("dsar/sealed/v1\x00export-object\x00" + jobID) }

// objectLine is one record in an export object.
type objectLine struct {
	C string          `json:"c"`
	D json.RawMessage `json:"d"`
}

// newObjectWriter starts job's export as an object: the one an earlier
// attempt left is removed first, and the records are encrypted into an
// unnamed temporary file (only ciphertext touches the disk) until Flush
// uploads it.
func (s *Store) newObjectWriter(ctx context.Context, job *dsr.Job, xk *envelope.DataKey) (dsr.ExportWriter, error) {
	name := objectName(job.ID)
	if err := s.objects.Remove(ctx, name); err != nil {
		return nil, fmt.Errorf("clear earlier export: %w", err)
	}
	f, err := os.CreateTemp("", "dsar-export-*")
	if err != nil {
		return nil, fmt.Errorf("export buffer: %w", err)
	}
	_ = os.Remove(f.Name()) // unnamed: gone when closed, whatever happens
	sw, err := envelope.NewWriter(f, xk, aadObject(job.ID))
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &objectWriter{s: s, name: name, file: f, sw: sw, buf: bufio.NewWriterSize(sw, 64<<10)}, nil
}

// objectWriter writes one job's export object.
type objectWriter struct {
	s       *Store
	name    string
	file    *os.File
	sw      *envelope.Writer
	buf     *bufio.Writer
	enc     store.ExportEncoder
	line    bytes.Buffer
	flushed bool
}

func (w *objectWriter) WriteRecord(_ context.Context, collection string, doc any) error {
	if w.flushed {
		return errors.New("export: a record written after the export was stored")
	}
	data, _, err := w.enc.Next(collection, doc) // encoding and the order of collections, as the drivers hold them
	if err != nil {
		return err
	}
	w.line.Reset()
	enc := json.NewEncoder(&w.line)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(objectLine{C: collection, D: json.RawMessage(data)}); err != nil {
		return fmt.Errorf("export record in %s: %w", collection, err)
	}
	if _, err := w.buf.Write(w.line.Bytes()); err != nil {
		return fmt.Errorf("export buffer: %w", err)
	}
	return nil
}

// Discard drops what was written, when the export fails before its
// Flush: the buffer's file is closed, and its disk space freed, now rather
// than when the garbage collector finds it. The writer is done then.
func (w *objectWriter) Discard() {
	if !w.flushed {
		w.flushed = true
		_ = w.file.Close()
	}
}

// Flush ends the stream and uploads the object; the writer is done then.
func (w *objectWriter) Flush(ctx context.Context) error {
	if w.flushed {
		return nil
	}
	w.flushed = true
	defer w.file.Close()
	if err := w.buf.Flush(); err != nil {
		return fmt.Errorf("export buffer: %w", err)
	}
	if err := w.sw.Close(); err != nil {
		return fmt.Errorf("export buffer: %w", err)
	}
	size, err := w.file.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("export buffer: %w", err)
	}
	if _, err := w.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("export buffer: %w", err)
	}
	return w.s.objects.Put(ctx, w.name, w.file, size)
}

// eachObjectRecord reads job jobID's export object, decrypting while it
// streams; missing is true when there is no object (the export is in the
// store's records: made before objects were configured).
func (s *Store) eachObjectRecord(ctx context.Context, jobID string, xk *envelope.DataKey, fn func(collection string, data json.RawMessage) error) (missing bool, err error) {
	obj, err := s.objects.Get(ctx, objectName(jobID))
	if s.objects.Missing(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer obj.Close()
	sr, err := envelope.NewReader(obj, xk, aadObject(jobID))
	if err != nil {
		return false, fmt.Errorf("job %s: export object: %w", jobID, err)
	}
	r := bufio.NewReaderSize(sr, 64<<10)
	for n := 1; ; n++ {
		raw, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) && len(raw) == 0 {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("job %s: export object, record %d: %w", jobID, n, err)
		}
		var l objectLine
		if err := json.Unmarshal(raw, &l); err != nil {
			return false, fmt.Errorf("job %s: export object, record %d: %w", jobID, n, err)
		}
		if err := fn(l.C, l.D); err != nil {
			return false, err
		}
	}
}
