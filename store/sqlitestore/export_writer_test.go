package sqlitestore

import (
	"context"
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

// TestExportWriterBatchError: a batch committed while the export goes on
// fails (here: the seqs are taken by another writer of the same job), and
// its error is what the next WriteRecord or Flush returns; a writer that is
// discarded leaves no write in flight.
func TestExportWriterBatchError(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	job := dsr.NewJob("01a20d27-0000-7000-8000-000000000009", "shop", dsr.ActionExport, f.clock.Now())
	first, err := f.store.NewExportWriter(ctx, &job)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.store.NewExportWriter(ctx, &job)
	if err != nil {
		t.Fatal(err)
	}
	fill := func(w dsr.ExportWriter, n int) error {
		for i := range n {
			if err := w.WriteRecord(ctx, "orders", map[string]int{"n": i}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := fill(first, exportWriteRecords); err != nil {
		t.Fatal(err)
	}
	if err := first.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The second writer's first batch takes the same seqs: it is queued
	// without waiting, and fails.
	if err := fill(second, exportWriteRecords); err != nil {
		t.Fatalf("the batch is queued, not waited for: %v", err)
	}
	if err := second.Flush(ctx); err == nil {
		t.Fatal("Flush: no error; want the failed batch's")
	}
	if got := readExport(t, f.store, job.ID); len(got) != exportWriteRecords {
		t.Fatalf("%d records stored; want the first writer's %d", len(got), exportWriteRecords)
	}

	// A third attempt, discarded after a full batch: nothing in flight once
	// Discard returns, and the batch it queued is committed.
	third, err := f.store.NewExportWriter(ctx, &job)
	if err != nil {
		t.Fatal(err)
	}
	if err := fill(third, exportWriteRecords+5); err != nil {
		t.Fatal(err)
	}
	third.(interface{ Discard() }).Discard()
	if w := third.(*ExportWriter); w.pending != nil || len(w.batch) != 0 {
		t.Fatalf("after Discard: pending %v, %d queued", w.pending, len(w.batch))
	}
	if got := readExport(t, f.store, job.ID); len(got) != exportWriteRecords {
		t.Fatalf("%d records stored; want %d", len(got), exportWriteRecords)
	}
}
