package sqlitestore

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// readExport returns the records of job as "collection data" lines.
func readExport(t *testing.T, s *Store, jobID string) []string {
	t.Helper()
	var got []string
	err := s.EachExportRecord(context.Background(), jobID, func(coll string, data json.RawMessage) error {
		got = append(got, coll+" "+string(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestExportRecordsInOrder: 10,000 records in three collections, written
// after an attempt that is then retried, read back once each in the order
// written; another job's records stay apart.
func TestExportRecordsInOrder(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	job := dsr.NewJob("01a20d27-0000-7000-8000-000000000001", "shop", dsr.ActionExport, f.clock.Now())
	other := dsr.NewJob("01a20d27-0000-7000-8000-000000000002", "shop", dsr.ActionExport, f.clock.Now())
	colls := []string{"customers", "orders", "tickets"}
	write := func(job *dsr.Job, n int) {
		t.Helper()
		w, err := f.store.NewExportWriter(ctx, job)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := w.WriteRecord(ctx, colls[i*len(colls)/n], map[string]int{"n": i}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	write(&job, 7) // an attempt that is then retried
	write(&other, 3)
	const n = 10_000
	write(&job, n) // the retry replaces it

	var (
		i     int
		order []string
	)
	err := f.store.EachExportRecord(ctx, job.ID, func(coll string, data json.RawMessage) error {
		var rec struct{ N int }
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		if rec.N != i {
			t.Fatalf("record %d is %d: out of order, or a record of the first attempt", i, rec.N)
		}
		if want := colls[i*len(colls)/n]; coll != want {
			t.Fatalf("record %d in %s, want %s", i, coll, want)
		}
		if len(order) == 0 || order[len(order)-1] != coll {
			order = append(order, coll)
		}
		i++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if i != n {
		t.Errorf("read %d records, want %d", i, n)
	}
	if diff := cmp.Diff(colls, order); diff != "" {
		t.Errorf("collections in order (-want +got):\n%s", diff)
	}
	if got := readExport(t, f.store, other.ID); len(got) != 3 {
		t.Errorf("the other job's export: %d records, want 3", len(got))
	}
	if got := readExport(t, f.store, "no-such-job"); len(got) != 0 {
		t.Errorf("a job with no export: %v", got)
	}

	// fn's error ends the read.
	stop := errors.New("stop")
	calls := 0
	if err := f.store.EachExportRecord(ctx, job.ID, func(string, json.RawMessage) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("fn failing: %v after %d calls, want its error after 1", err, calls)
	}
}

// TestExportOrder: going back to a collection already left is
// ErrExportOrder, and that record is not written.
func TestExportOrder(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	job := dsr.NewJob("01a20d27-0000-7000-8000-000000000003", "shop", dsr.ActionExport, f.clock.Now())
	w, err := f.store.NewExportWriter(ctx, &job)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"a", "a", "b"} {
		if err := w.WriteRecord(ctx, c, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteRecord(ctx, "a", "late"); !errors.Is(err, dsr.ErrExportOrder) {
		t.Errorf("back to a: %v, want ErrExportOrder", err)
	}
	if err := w.WriteRecord(ctx, "b", "b2"); err != nil {
		t.Errorf("on in b: %v", err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{`a "a"`, `a "a"`, `b "b"`, `b "b2"`}
	if diff := cmp.Diff(want, readExport(t, f.store, job.ID)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

// TestExportRecordsUpgraded: a file whose export_records is the WITHOUT
// ROWID table of before gets the table with rowids at its next start, its
// records and their index kept; a start after that changes nothing.
func TestExportRecordsUpgraded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dsar.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The table as files made before 2026-12-01 have it, with a job's
	// records and another's.
	for _, q := range []string{
		`DROP TABLE export_records`,
		`CREATE TABLE export_records (job_id TEXT NOT NULL, seq INTEGER NOT NULL, request_id TEXT NOT NULL,
			collection TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (job_id, seq)) WITHOUT ROWID`,
		`CREATE INDEX export_records_request ON export_records (request_id)`,
		`INSERT INTO export_records VALUES ('j1', 1, 'r1', 'customers', '{"a":1}'), ('j1', 2, 'r1', 'orders', '{"b":2}'), ('j2', 1, 'r2', 'customers', '{"c":3}')`,
	} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for start := range 2 {
		s, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatalf("start %d: %v", start+1, err)
		}
		var def string
		if err := s.r.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'export_records'`).Scan(&def); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToUpper(def), "WITHOUT ROWID") {
			t.Errorf("start %d: export_records still WITHOUT ROWID: %s", start+1, def)
		}
		var tables, index int
		if err := s.r.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name LIKE 'export_records%'),
			(SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'export_records_request' AND tbl_name = 'export_records')`).Scan(&tables, &index); err != nil {
			t.Fatal(err)
		}
		if tables != 1 || index != 1 {
			t.Errorf("start %d: %d export_records tables, %d request indexes on it; want 1 and 1", start+1, tables, index)
		}
		if diff := cmp.Diff([]string{`customers {"a":1}`, `orders {"b":2}`}, readExport(t, s, "j1")); diff != "" {
			t.Errorf("start %d: job j1's records (-want +got):\n%s", start+1, diff)
		}
		if diff := cmp.Diff([]string{`customers {"c":3}`}, readExport(t, s, "j2")); diff != "" {
			t.Errorf("start %d: job j2's records (-want +got):\n%s", start+1, diff)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
