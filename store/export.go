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
}

// Next encodes doc, the next record of the export, found in collection: a
// plain Go value that encoding/json encodes (a map, a struct, a slice, a
// json.RawMessage), as JSON text with characters as given (no HTML
// escaping), and its seq, 1 for the export's first record. A
// [dsr.CompactJSON] is taken as it is, not read again. A doc JSON cannot
// encode is an error, and going back to a collection already left is
// dsr.ErrExportOrder; neither takes a seq.
func (e *ExportEncoder) Next(collection string, doc any) (data string, seq int64, err error) {
	if e.enc == nil {
		e.enc = json.NewEncoder(&e.buf)
		e.enc.SetEscapeHTML(false)
		e.done = map[string]bool{}
	}
	if c, ok := doc.(dsr.CompactJSON); ok && c != nil {
		data = string(c) // compact, valid JSON: what Encode would write
	} else {
		e.buf.Reset()
		if err := e.enc.Encode(doc); err != nil {
			return "", 0, fmt.Errorf("export record in %s: not JSON-encodable: %w", collection, err)
		}
		data = string(bytes.TrimSuffix(e.buf.Bytes(), []byte("\n")))
	}
	if collection != e.current {
		if e.done[collection] {
			return "", 0, fmt.Errorf("%w: %s", dsr.ErrExportOrder, collection)
		}
		e.done[e.current] = true
		e.current = collection
	}
	e.seq++
	return data, e.seq, nil
}
