package dsr

import "context"

// ExportWriter stores the records one export job finds, as a store driver
// keeps them. It is the connectors' RecordWriter (WriteRecord) with Flush,
// which stores what is still buffered; call it when the export ends.
type ExportWriter interface {
	// WriteRecord queues one record found in collection; doc is a plain
	// Go value that encoding/json encodes, encoded before it returns. A
	// collection's records come together: going back to one already left
	// is ErrExportOrder.
	WriteRecord(ctx context.Context, collection string, doc any) error
	// Flush stores the queued records.
	Flush(ctx context.Context) error
}
