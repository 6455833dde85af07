package dsr

import "context"

// ExportWriter stores the records one export job finds, as a store driver
// keeps them. It is the connectors' RecordWriter (WriteRecord) with Flush,
// which stores what is still buffered; call it when the export ends.
type ExportWriter interface {
	// WriteRecord queues one record found in collection; doc is a plain
	// Go value that encoding/json encodes, encoded before it returns (a
	// CompactJSON is taken as it is). A collection's records come
	// together: going back to one already left is ErrExportOrder.
	WriteRecord(ctx context.Context, collection string, doc any) error
	// Flush stores the queued records.
	Flush(ctx context.Context) error
}

// CompactJSON is one JSON value, as text, that is valid and compact: no
// white space outside its strings, so no raw newline anywhere (a string's
// newline is the escape \n). Where encoding/json would check and compact
// a json.RawMessage, an export writer stores a CompactJSON byte for byte,
// without reading it again: the code that makes one promises it is so.
// Only code that writes the bytes itself, and so can keep that promise,
// may make one (connectors/sqldb's record encoder); JSON text from
// anywhere else is a json.RawMessage.
//
// To encoding/json it is what it holds (MarshalJSON), checked and
// compacted as a json.RawMessage is.
type CompactJSON []byte

// MarshalJSON returns j; null when j is nil.
func (j CompactJSON) MarshalJSON() ([]byte, error) {
	if j == nil {
		return []byte("null"), nil
	}
	return j, nil
}
