package sealedstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/klauspost/compress/s2"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/store"
)

// An export kept in the store's export records is sealed in chunks: a
// collection's records, as compact JSON text each followed by '\n' (which
// compact JSON never holds), are gathered up to chunkBytes, compressed
// (S2's block format, github.com/klauspost/compress/s2: fast, stateless;
// records alike, such as a table's rows, take a sixth of their size or
// less, and the store writes that much less) and sealed as one envelope, bound (aadChunk) to the job, the
// collection, the chunk's place among the driver's records (its seq) and
// the number of its first record. Compressed, a chunk's size tells how
// alike its records are, as a sealed value's size tells its length. The
// driver stores one record per chunk: a JSON string, chunkPrefix then the
// sealed chunk in base64. The export ends with an end chunk (collection
// endCollection) that counts the records before it, so that a reader can
// tell an export cut short; a chunk removed, moved, altered or cut fails
// to open.
//
// Exports stored before chunks hold one driver record per record, a JSON
// string of the sealed record in base64 alone (no prefix: base64 has no
// ':'), bound by aadExport; EachExportRecord still reads them. An export
// is of one form or the other throughout.

// chunkPrefix begins the stored string of a sealed chunk.
const chunkPrefix = "chunk:"

// chunkBytes is how much record text a chunk gathers before it is
// compressed and sealed (it ends with the record that reaches it, so a
// large record makes a large chunk): large enough that sealing and
// storing cost little per record, small enough that a writer holds little
// (two chunks: the one it fills and the one being stored).
const chunkBytes = 64 << 10

// aadChunk binds a sealed chunk of job jobID's export to its collection,
// its place (seq, the driver's record number, 1 for the first) and the
// number of its first record (1 for the export's first).
func aadChunk(jobID, collection string, seq, first int) []byte {
	return fmt.Appendf(nil, "dsar/sealed/v1\x00export-chunk\x00%s\x00%s\x00%d\x00%d", jobID, collection, seq, first)
}

// aadExport binds a record of an export stored one sealed record per
// driver record (before chunks) to its job, its collection and its place.
func aadExport(jobID, collection string, n int) []byte {
	return fmt.Appendf(nil, "dsar/sealed/v1\x00export\x00%s\x00%s\x00%d", jobID, collection, n)
}

// endCollection is the collection of an export's end record: no system's
// collection is named so.
const endCollection = "\x00end"

// exportEnd is the content of an export's end record.
type exportEnd struct {
	Records int `json:"records"`
}

// NewExportWriter seals every record under the export key of the job's
// request: into the store's export records, in chunks, or into one object
// per job when an object store is configured (see objects.go).
func (s *Store) NewExportWriter(ctx context.Context, job *dsr.Job) (dsr.ExportWriter, error) {
	xk, purged, err := s.requestKeyOr(ctx, job.RequestID, "x:")
	if err != nil {
		return nil, fmt.Errorf("job %s: export key: %w", job.ID, err)
	}
	if purged {
		return nil, fmt.Errorf("job %s: its request's exports were purged: no export is kept for it", job.ID)
	}
	if xk != nil && s.objects != nil {
		return s.newObjectWriter(ctx, job, xk)
	}
	w, err := s.Store.NewExportWriter(ctx, job)
	if err != nil || xk == nil {
		return w, err
	}
	limit := s.chunkBytes
	if limit <= 0 {
		limit = chunkBytes
	}
	return &chunkWriter{inner: w, key: xk, jobID: job.ID, limit: limit}, nil
}

// chunkWriter gathers records into chunks and has each sealed and handed
// to the driver's writer on a goroutine of its own while the next fills:
// at most one chunk is in flight, and its error is returned by the next
// WriteRecord or by Flush.
type chunkWriter struct {
	inner dsr.ExportWriter
	key   *envelope.DataKey
	jobID string
	limit int

	buf        bytes.Buffer        // the chunk being filled: records, each followed by '\n'
	enc        store.ExportEncoder // encodes records and holds them to the export's order, as the drivers do
	collection string              // of the chunk being filled
	records    int                 // records written, buffered ones included
	first      int                 // records before the chunk being filled
	chunks     int                 // chunks handed over (the driver's seq of the last)

	spare   *chunkBuffers // the buffers of the chunk in flight, reused after it
	pending chan error    // the outcome of the chunk in flight; nil when none is
	failed  error         // once set, every call returns it
	ended   bool
}

// chunkBuffers are what sealing and handing over a chunk use.
type chunkBuffers struct {
	plain bytes.Buffer
	z     []byte
	out   []byte
}

var _ dsr.ExportWriter = (*chunkWriter)(nil)

func (w *chunkWriter) WriteRecord(ctx context.Context, collection string, doc any) error {
	if w.failed != nil {
		return w.failed
	}
	if w.ended || collection == endCollection {
		return fmt.Errorf("export record in %q: after the export's end", collection)
	}
	if collection != w.collection {
		if err := w.send(ctx); err != nil { // a chunk holds one collection's records
			return err
		}
		w.collection = collection
	}
	rec, seq, err := w.enc.Append(w.buf.AvailableBuffer(), collection, doc)
	if err != nil {
		return err
	}
	w.buf.Write(rec)
	w.buf.WriteByte('\n')
	w.records = int(seq)
	if w.buf.Len() >= w.limit {
		return w.send(ctx)
	}
	return nil
}

// send waits for the chunk in flight, then hands the chunk filled, if any,
// to be sealed and stored.
func (w *chunkWriter) send(ctx context.Context) error {
	if err := w.wait(); err != nil {
		return err
	}
	if w.buf.Len() == 0 {
		return nil
	}
	if w.spare == nil {
		w.spare = &chunkBuffers{}
	}
	c := w.spare
	c.plain.Reset()
	c.plain.Write(w.buf.Bytes())
	w.buf.Reset()
	w.chunks++
	seq, first, collection := w.chunks, w.first+1, w.collection
	w.first = w.records
	w.pending = make(chan error, 1)
	go func() { w.pending <- w.store(ctx, c, collection, seq, first) }()
	return nil
}

// wait waits for the chunk in flight, if any, and returns its error, which
// is then the writer's for good.
func (w *chunkWriter) wait() error {
	if w.pending != nil {
		err := <-w.pending
		w.pending = nil
		if err != nil {
			w.failed = err
		}
	}
	return w.failed
}

// store seals c's plain text as the chunk seq of collection, whose first
// record is the export's first-th, and hands it to the driver's writer.
// It touches nothing of w but what it is given, and w.inner, which only
// the chunk in flight uses.
func (w *chunkWriter) store(ctx context.Context, c *chunkBuffers, collection string, seq, first int) error {
	c.z = s2.Encode(c.z[:cap(c.z)], c.plain.Bytes())
	sealed, err := envelope.Seal(w.key, c.z, aadChunk(w.jobID, collection, seq, first))
	if err != nil {
		return err
	}
	n := 1 + len(chunkPrefix) + b64.EncodedLen(len(sealed)) + 1
	if cap(c.out) < n {
		c.out = make([]byte, n)
	}
	out := c.out[:n]
	out[0] = '"'
	copy(out[1:], chunkPrefix)
	b64.Encode(out[1+len(chunkPrefix):n-1], sealed)
	out[n-1] = '"'
	// A JSON string of ASCII letters, digits, '+', '/' and ':': compact,
	// valid JSON; the driver's writer copies it before it returns.
	return w.inner.WriteRecord(ctx, collection, dsr.CompactJSON(out))
}

// Flush seals and stores what is buffered, then the end chunk, and flushes
// the driver's writer.
func (w *chunkWriter) Flush(ctx context.Context) error {
	if !w.ended {
		if err := w.send(ctx); err != nil {
			return err
		}
		if err := w.wait(); err != nil {
			return err
		}
		w.collection = endCollection
		w.buf.Write(strconv.AppendInt(append(w.buf.AvailableBuffer(), `{"records":`...), int64(w.records), 10))
		w.buf.WriteByte('}')
		if err := w.send(ctx); err != nil {
			return err
		}
		if err := w.wait(); err != nil {
			return err
		}
		w.ended = true
	}
	return w.inner.Flush(ctx)
}

// Discard waits for the chunk in flight, if any, and discards the
// driver's writer's queue when it can: the export failed.
func (w *chunkWriter) Discard() {
	_ = w.wait()
	w.buf.Reset()
	if d, ok := w.inner.(interface{ Discard() }); ok {
		d.Discard()
	}
}

// looksSealedRecord reports whether data, an export record as a driver
// stored it, has the form of a sealed chunk or record.
func looksSealedRecord(data json.RawMessage) bool {
	var v string
	return json.Unmarshal(data, &v) == nil && (strings.HasPrefix(v, chunkPrefix) || looksSealed(v))
}

// EachExportRecord opens each record of job jobID's export under its
// request's export key, in chunks or one by one as the export was stored
// (see chunkPrefix). Records stored in clear (a request in clear) are
// passed as they are. data is valid only until fn returns.
func (s *Store) EachExportRecord(ctx context.Context, jobID string, fn func(collection string, data json.RawMessage) error) error {
	xk, err := s.requestKey(ctx, dsr.JobRequestID(jobID), "x:")
	if errors.Is(err, dsr.ErrNotFound) {
		return s.Store.EachExportRecord(ctx, jobID, fn) // as the driver answers an unknown job
	}
	if err != nil {
		return fmt.Errorf("job %s: export key: %w", jobID, err)
	}
	if xk == nil {
		n := 0
		return s.Store.EachExportRecord(ctx, jobID, func(collection string, data json.RawMessage) error {
			n++
			if looksSealedRecord(data) {
				return fmt.Errorf("job %s: export record %d: %w", jobID, n, errNoDataKey)
			}
			return fn(collection, data)
		})
	}
	if s.objects != nil {
		if missing, err := s.eachObjectRecord(ctx, jobID, xk, fn); !missing {
			return err
		}
	}
	var (
		n        int  // the driver's records read
		records  int  // the export's records given to fn
		chunked  bool // the form of the export, from its first record
		ended    bool
		sealed   []byte
		inflate  []byte
		endCount = func(plain []byte) bool {
			var end exportEnd
			return json.Unmarshal(plain, &end) == nil && end.Records == records
		}
	)
	err = s.Store.EachExportRecord(ctx, jobID, func(collection string, data json.RawMessage) error {
		n++
		if ended {
			return fmt.Errorf("job %s: export record %d: after the export's end", jobID, n)
		}
		// A JSON string of base64, after chunkPrefix for a chunk, which
		// needs no escapes: its quotes go.
		if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
			return fmt.Errorf("job %s: export record %d: not sealed", jobID, n)
		}
		text, isChunk := bytes.CutPrefix(data[1:len(data)-1], []byte(chunkPrefix))
		if n == 1 {
			chunked = isChunk
		} else if isChunk != chunked {
			return fmt.Errorf("job %s: export record %d: sealed chunks and sealed records mixed", jobID, n)
		}
		var err error
		if sealed, err = decodeBase64(sealed, text); err != nil {
			return fmt.Errorf("job %s: export record %d: not sealed (base64)", jobID, n)
		}
		if !chunked {
			plain, err := envelope.Open(xk, sealed, aadExport(jobID, collection, n))
			if err != nil {
				return fmt.Errorf("job %s: export record %d: %w", jobID, n, err)
			}
			if collection == endCollection {
				if !endCount(plain) {
					return fmt.Errorf("job %s: export record %d: the end record does not count the records before it", jobID, n)
				}
				ended = true
				return nil
			}
			records++
			return fn(collection, plain)
		}
		z, err := envelope.Open(xk, sealed, aadChunk(jobID, collection, n, records+1))
		if err != nil {
			return fmt.Errorf("job %s: export chunk %d: %w", jobID, n, err)
		}
		if inflate, err = s2.Decode(inflate[:cap(inflate)], z); err != nil {
			return fmt.Errorf("job %s: export chunk %d: decompress: %w", jobID, n, err)
		}
		plain := inflate
		if collection == endCollection {
			if !endCount(plain) {
				return fmt.Errorf("job %s: export chunk %d: the end chunk does not count the records before it", jobID, n)
			}
			ended = true
			return nil
		}
		if len(plain) == 0 || plain[len(plain)-1] != '\n' {
			return fmt.Errorf("job %s: export chunk %d: not records ending with a newline", jobID, n)
		}
		for len(plain) > 0 {
			i := bytes.IndexByte(plain, '\n')
			records++
			if err := fn(collection, plain[:i:i]); err != nil {
				return err
			}
			plain = plain[i+1:]
		}
		return nil
	})
	switch {
	case err != nil:
	case n == 0:
		// Every sealed export that succeeded has an object, or an end
		// record here: one that has neither is lost, not empty.
		err = s.exportLost(ctx, jobID)
	case !ended:
		err = fmt.Errorf("job %s: export cut short: %d records and no end record (records deleted, or the export never finished)", jobID, records)
	}
	return err
}

// decodeBase64 decodes text (standard, unpadded) into buf, grown as
// needed, and returns it.
func decodeBase64(buf, text []byte) ([]byte, error) {
	n := b64.DecodedLen(len(text))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	n, err := b64.Decode(buf[:n], text)
	return buf[:n], err
}

// exportLost returns the error for job jobID's export found neither in the
// bucket nor in the store: none for a job that has not exported (not an
// export, or not succeeded).
func (s *Store) exportLost(ctx context.Context, jobID string) error {
	j, err := s.Store.Job(ctx, jobID)
	if errors.Is(err, dsr.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("job %s: %w", jobID, err)
	}
	if j.Action != dsr.ActionExport || j.Status != dsr.JobSucceeded {
		return nil
	}
	if s.objects != nil {
		return fmt.Errorf("job %s: %w: no export object %s in the bucket and no export records in the store (the object deleted, or the bucket?)", jobID, dsr.ErrUnreadable, objectName(jobID))
	}
	return fmt.Errorf("job %s: %w: no export records, not even an end record (records deleted, or the export kept in a bucket no longer configured: DSAR_EXPORT_S3_*)", jobID, dsr.ErrUnreadable)
}
