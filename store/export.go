package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/dsar-project/dsar/dsr"
)

// ExportEncoder encodes the records of one export as JSON and numbers them,
// holding them to the order [dsr.ExportWriter] promises: a collection's
// records come together. Each driver's export writer keeps one and stores
// what [ExportEncoder.Next] returns. The zero value is ready to use.
type ExportEncoder struct {
	seq     int64
	current string
	done    map[string]bool
	buf     bytes.Buffer
	enc     *json.Encoder
	scratch []byte // Next's, reused
}

// Next encodes doc, the next record of the export, found in collection: a
// plain Go value that encoding/json encodes (a map, a struct, a slice, a
// json.RawMessage), as JSON text with characters as given (no HTML
// escaping), and its seq, 1 for the export's first record. A
// [dsr.CompactJSON] is taken as it is, not read again, but for a raw
// newline, which breaks its promise and is refused (a writer storing
// records one a line would read it as two). A doc JSON cannot encode is an
// error, and going back to a collection already left is
// dsr.ErrExportOrder; neither takes a seq.
func (e *ExportEncoder) Next(collection string, doc any) (data string, seq int64, err error) {
	b, seq, err := e.Append(e.scratch[:0], collection, doc)
	e.scratch = b[:0]
	return string(b), seq, err
}

// Append is Next appending the record's JSON text to dst, for a writer that
// gathers records in a buffer of its own; on error dst is returned as given.
func (e *ExportEncoder) Append(dst []byte, collection string, doc any) (_ []byte, seq int64, err error) {
	if e.enc == nil {
		e.enc = json.NewEncoder(&e.buf)
		e.enc.SetEscapeHTML(false)
		e.done = map[string]bool{}
	}
	if collection != e.current && e.done[collection] {
		return dst, 0, fmt.Errorf("%w: %s", dsr.ErrExportOrder, collection)
	}
	if c, ok := doc.(dsr.CompactJSON); ok && c != nil {
		if bytes.IndexByte(c, '\n') >= 0 {
			return dst, 0, fmt.Errorf("export record in %s: a dsr.CompactJSON with a newline", collection)
		}
		dst = append(dst, c...) // compact, valid JSON: what Encode would write
	} else {
		e.buf.Reset()
		if err := e.enc.Encode(doc); err != nil {
			return dst, 0, fmt.Errorf("export record in %s: not JSON-encodable: %w", collection, err)
		}
		dst = append(dst, bytes.TrimSuffix(e.buf.Bytes(), []byte("\n"))...)
	}
	if collection != e.current {
		e.done[e.current] = true
		e.current = collection
	}
	e.seq++
	return dst, e.seq, nil
}
