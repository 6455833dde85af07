package sealedstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/store/sealedstore"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

// tamperFixture is a sealed SQLite store whose file the test alters behind
// it, as someone with the file but not the master keys could.
type tamperFixture struct {
	path  string
	inner *sqlitestore.Store
	ring  *envelope.Keyring
	now   time.Time
}

func newTamperFixture(t *testing.T) *tamperFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dsar.db")
	s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &tamperFixture{path: path, inner: s, ring: ring(t), now: time.Now().UTC().Truncate(time.Millisecond)}
}

// sealed returns a sealing store with nothing cached: as after a restart.
func (f *tamperFixture) sealed() *sealedstore.Store {
	return sealedstore.New(f.inner, f.ring, sealedstore.Options{})
}

// file files a verified request of email, with a job holding it.
func (f *tamperFixture) file(t *testing.T, id, email string) {
	t.Helper()
	ctx := context.Background()
	ids := []dsr.Identity{{Kind: dsr.KindEmail, Value: email, Source: dsr.SourceSubject}}
	r := &dsr.Request{ID: id, Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerified, Source: "agent_api",
		Identities: ids, IdentityHashes: []string{"email:" + id}, Note: "called about " + email,
		ReceivedAt: f.now, DueAt: f.now.Add(time.Hour), UpdatedAt: f.now,
		History: []dsr.Transition{{To: dsr.StatusVerified, At: f.now, Actor: "agent"}}}
	s := f.sealed()
	if err := s.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	j := dsr.NewJob(id, "shop", dsr.ActionExport, f.now)
	j.Identities = ids
	if err := s.CreateJobs(ctx, []dsr.Job{j}); err != nil {
		t.Fatal(err)
	}
}

// exec runs an SQL statement that changes one row on the store's file from
// another connection.
func (f *tamperFixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if n := f.execRows(t, q, args...); n != 1 {
		t.Fatalf("%s: %d rows changed, want 1", q, n)
	}
}

// execRows runs an SQL statement on the store's file from another
// connection and returns how many rows it changed.
func (f *tamperFixture) execRows(t *testing.T, q string, args ...any) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := res.RowsAffected()
	return n
}

// Another request's sealed identity (it does not open under this one's data
// key) makes the request unreadable, with an error naming it; the sweep's
// scans give it with its values withheld and go on, then report it.
func TestTamperedRequestDoesNotStopTheScans(t *testing.T) {
	ctx := context.Background()
	f := newTamperFixture(t)
	f.file(t, "r1", "ada@example.com")
	f.file(t, "r2", "grace@example.com")
	f.exec(t, `UPDATE requests SET doc = json_set(doc, '$.identities[0].value', (SELECT json_extract(doc, '$.identities[0].value') FROM requests WHERE id = 'r2')) WHERE id = 'r1'`)
	f.exec(t, `UPDATE jobs SET doc = json_set(doc, '$.identities[0].value', (SELECT json_extract(doc, '$.identities[0].value') FROM jobs WHERE id = ?)) WHERE id = ?`,
		dsr.JobID("r2", "shop", dsr.ActionExport), dsr.JobID("r1", "shop", dsr.ActionExport))
	s := f.sealed()

	if _, err := s.Request(ctx, "r1"); err == nil || !errors.Is(err, envelope.ErrAuth) || !strings.Contains(err.Error(), "r1") {
		t.Fatalf("Request(r1) = %v, want an authentication error naming r1", err)
	}
	// The list shows heads: it lists both, r1's values withheld.
	list, _, err := s.ListRequests(ctx, dsr.ListFilter{Limit: 10})
	if err != nil {
		t.Fatalf("ListRequests: %v", err)
	}
	var listed []string
	for _, r := range list {
		listed = append(listed, r.ID+" "+r.Identities[0].Value+" "+r.Note)
	}
	if got := strings.Join(listed, ","); got != "r1  ,r2 grace@example.com called about grace@example.com" &&
		got != "r2 grace@example.com called about grace@example.com,r1  " {
		t.Errorf("ListRequests gave %q, want r1 with its values withheld and r2 opened", listed)
	}

	// A fan-out of r1 fails (it cannot be read); the failures are counted,
	// so that the worker moves it to needs_attention in time.
	for i := 1; i <= 2; i++ {
		r, err := s.FanoutFailed(ctx, "r1", "request r1 does not open")
		if err != nil || r.FanoutFailures != i {
			t.Fatalf("FanoutFailed #%d: %v, %v; want the failure counted", i, r, err)
		}
	}

	var seen []string
	err = s.EachStaleRequest(ctx, f.now.Add(time.Hour), func(r *dsr.Request) error {
		seen = append(seen, r.ID+" "+r.Identities[0].Value)
		return nil
	})
	slices.Sort(seen)
	if strings.Join(seen, ",") != "r1 ,r2 grace@example.com" {
		t.Errorf("EachStaleRequest gave %q, want r1 with its values withheld, r2 opened", seen)
	}
	if err == nil || !strings.Contains(err.Error(), "r1") {
		t.Errorf("EachStaleRequest: %v, want an error naming r1", err)
	}

	seen = nil
	err = s.EachStaleJob(ctx, f.now.Add(time.Hour), f.now.Add(time.Hour), func(j *dsr.Job) error {
		seen = append(seen, j.ID+" "+j.Identities[0].Value)
		return nil
	})
	slices.Sort(seen)
	if want := dsr.JobID("r1", "shop", dsr.ActionExport) + " ," + dsr.JobID("r2", "shop", dsr.ActionExport) + " grace@example.com"; strings.Join(seen, ",") != want {
		t.Errorf("EachStaleJob gave %q, want %q", seen, want)
	}
	if err == nil || !strings.Contains(err.Error(), dsr.JobID("r1", "shop", dsr.ActionExport)) {
		t.Errorf("EachStaleJob: %v, want an error naming r1's job", err)
	}
}

// A request whose data key was deleted from the file is not read as a
// request in clear: its ciphertexts are not handed out as identities (a
// connector would be sent them, and find nobody), and identities set on it
// are not written in clear.
func TestRemovedDataKeyIsAnError(t *testing.T) {
	ctx := context.Background()
	f := newTamperFixture(t)
	f.file(t, "r1", "ada@example.com")
	f.exec(t, `UPDATE requests SET doc = json_remove(doc, '$.data_key') WHERE id = 'r1'`)
	s := f.sealed()

	r, err := s.Request(ctx, "r1")
	if err == nil {
		t.Fatalf("Request(r1) = identities %q, note %q: ciphertexts taken for clear values", r.Identities, r.Note)
	}
	if !strings.Contains(err.Error(), "no data key") {
		t.Errorf("Request(r1): %v, want it to say the data key is missing", err)
	}
	// The request's jobs are listed (the agent works the request), their
	// values withheld; claiming one is the error (TestUnreadableWorkNeedsAttention).
	if jobs, err := s.Jobs(ctx, "r1"); err != nil || len(jobs) != 1 || len(jobs[0].Identities) != 0 {
		t.Errorf("Jobs(r1) = %+v, %v; want its job, values withheld", jobs, err)
	}
	if _, err := s.Job(ctx, dsr.JobID("r1", "shop", dsr.ActionExport)); !errors.Is(err, dsr.ErrUnreadable) {
		t.Errorf("Job: %v, want ErrUnreadable", err)
	}
	_, err = s.Transition(ctx, "r1", dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{
		Identities: []dsr.Identity{{Kind: dsr.KindPhone, Value: "+14155550100", Source: dsr.SourceSubject}},
	})
	if err == nil {
		t.Error("Transition set identities on r1 (stored in clear)")
	}
	var doc string
	db, err := sql.Open("sqlite", "file:"+f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT doc FROM requests WHERE id = 'r1'`).Scan(&doc); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(doc, "4155550100") {
		t.Errorf("the phone number is stored in clear: %s", doc)
	}
}

// A request stored in clear, before sealing, still reads as it is.
func TestClearRequestStillReads(t *testing.T) {
	ctx := context.Background()
	f := newTamperFixture(t)
	r := &dsr.Request{ID: "old", Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerified, Source: "agent_api",
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject},
			{Kind: dsr.KindCustomerID, Value: "cus_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiM", Source: dsr.SourceSubject}},
		Note: "AQ", ReceivedAt: f.now, DueAt: f.now.Add(time.Hour), UpdatedAt: f.now,
		History: []dsr.Transition{{To: dsr.StatusVerified, At: f.now, Actor: "agent"}}}
	if err := f.inner.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := f.sealed().Request(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if got.Identities[0].Value != "ada@example.com" || got.Note != "AQ" {
		t.Errorf("got %q, note %q", got.Identities, got.Note)
	}
}

// A purge keeps the identities of a job still running (the conformance
// suite's RetentionPurges: "it still runs") but removes the data key they
// are sealed under: the job then reads as one whose identities were
// purged, with none, never handing a connector ciphertexts as identities.
func TestPurgeLeavesRunningJobNoCiphertexts(t *testing.T) {
	ctx := context.Background()
	f := newTamperFixture(t)
	f.file(t, "r1", "ada@example.com")
	s := f.sealed()
	if _, err := s.Transition(ctx, "r1", dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "agent"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeIdentities(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	j, err := f.sealed().Job(ctx, dsr.JobID("r1", "shop", dsr.ActionExport))
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Identities) > 0 {
		t.Errorf("the running job's identities after the purge: %q; want none (its data key is gone)", j.Identities)
	}
}

// A request's sealed values copied into another request, with its wrapped
// data key beside them, do not open there: values are bound to the id of
// the request that holds them, not only to its key.
func TestMovedValuesDoNotOpen(t *testing.T) {
	ctx := context.Background()
	f := newTamperFixture(t)
	f.file(t, "r1", "ada@example.com")
	f.file(t, "r2", "grace@example.com")
	f.exec(t, `UPDATE requests SET doc = json_set(doc,
		'$.data_key', (SELECT json_extract(doc, '$.data_key') FROM requests WHERE id = 'r2'),
		'$.identities[0].value', (SELECT json_extract(doc, '$.identities[0].value') FROM requests WHERE id = 'r2'),
		'$.note', (SELECT json_extract(doc, '$.note') FROM requests WHERE id = 'r2')) WHERE id = 'r1'`)
	if r, err := f.sealed().Request(ctx, "r1"); !errors.Is(err, envelope.ErrAuth) {
		t.Fatalf("Request(r1) with r2's key and values = %+v, %v; want an authentication error", r, err)
	}
	if r, err := f.sealed().Request(ctx, "r2"); err != nil || r.Identities[0].Value != "grace@example.com" {
		t.Fatalf("Request(r2) = %+v, %v", r, err)
	}
}

// An export kept in the store's records that loses a record, in its
// middle or at its end, or gets two swapped, fails to read: never a
// shorter export given as whole. So in each form an export is stored in:
// sealed records (as before chunks), and chunks of one record each (the
// same driver records as there are records).
func TestExportRecordsCutOrReordered(t *testing.T) {
	ctx := context.Background()
	jobID := dsr.JobID("r1", "shop", dsr.ActionExport)
	tests := []struct {
		name, sql string
	}{
		{"a record deleted in the middle", `DELETE FROM export_records WHERE job_id = ? AND seq = 2`},
		{"the last record deleted", `DELETE FROM export_records WHERE job_id = ? AND seq = 3`},
		{"the end record deleted", `DELETE FROM export_records WHERE job_id = ? AND seq = 4`},
		{"two records swapped", `UPDATE export_records SET data = (SELECT data FROM export_records e WHERE e.job_id = export_records.job_id AND e.seq = 3 - export_records.seq) WHERE job_id = ? AND seq IN (1, 2)`},
	}
	forms := []struct {
		name   string
		writer func(s *sealedstore.Store, j *dsr.Job) (dsr.ExportWriter, error)
	}{
		{"sealed records", func(s *sealedstore.Store, j *dsr.Job) (dsr.ExportWriter, error) {
			return sealedstore.NewRecordExportWriter(ctx, s, j)
		}},
		{"chunks of one record", func(s *sealedstore.Store, j *dsr.Job) (dsr.ExportWriter, error) {
			return sealedstore.WithChunkBytes(s, 1).NewExportWriter(ctx, j)
		}},
	}
	for _, form := range forms {
		for _, tt := range tests {
			t.Run(form.name+"/"+tt.name, func(t *testing.T) {
				f := newTamperFixture(t)
				f.file(t, "r1", "ada@example.com")
				w := exportWriter(t, f.sealed(), jobID, form.writer)
				for n := range 3 {
					if err := w.WriteRecord(ctx, "customers", map[string]int{"n": n}); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				if got := f.exportRows(t, jobID); got != 4 {
					t.Fatalf("%d export records stored; want 4 (3 and the end)", got)
				}
				count := func() (int, error) {
					n := 0
					err := f.sealed().EachExportRecord(ctx, jobID, func(string, json.RawMessage) error { n++; return nil })
					return n, err
				}
				if n, err := count(); err != nil || n != 3 {
					t.Fatalf("before: %d records, %v; want 3", n, err)
				}
				if f.execRows(t, tt.sql, jobID) == 0 {
					t.Fatal("nothing changed")
				}
				if n, err := count(); err == nil {
					t.Fatalf("after: %d records and no error", n)
				}
			})
		}
	}
}

// exportRows counts the driver's records of job's export.
func (f *tamperFixture) exportRows(t *testing.T, jobID string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM export_records WHERE job_id = ?`, jobID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// writeChunkedExport exports 30 records of about 100 bytes each, in
// chunks of at least 1 KiB (10 records to a chunk: 3 chunks, then the
// end), 20 in "customers" and 10 in "orders", and returns them as written.
func (f *tamperFixture) writeChunkedExport(t *testing.T, jobID string) []string {
	t.Helper()
	ctx := context.Background()
	w := exportWriter(t, sealedstore.WithChunkBytes(f.sealed(), 1000), jobID, nil)
	var want []string
	for n := range 30 {
		col := "customers"
		if n >= 20 {
			col = "orders"
		}
		rec := fmt.Sprintf(`{"n":%d,"text":"%s"}`, n, strings.Repeat("x", 90))
		if err := w.WriteRecord(ctx, col, json.RawMessage(rec)); err != nil {
			t.Fatal(err)
		}
		want = append(want, col+" "+rec)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.exportRows(t, jobID); got != 4 {
		t.Fatalf("%d export records stored; want 4 (3 chunks and the end)", got)
	}
	return want
}

// exportWriter returns a writer of job jobID's export made by newWriter
// on s (s.NewExportWriter when nil).
func exportWriter(t *testing.T, s *sealedstore.Store, jobID string, newWriter func(*sealedstore.Store, *dsr.Job) (dsr.ExportWriter, error)) dsr.ExportWriter {
	t.Helper()
	ctx := context.Background()
	j, err := s.Job(ctx, jobID)
	if err != nil {
		t.Fatal(err)
	}
	if newWriter == nil {
		newWriter = func(s *sealedstore.Store, j *dsr.Job) (dsr.ExportWriter, error) { return s.NewExportWriter(ctx, j) }
	}
	w, err := newWriter(s, j)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// readExport reads job jobID's export through a sealed store with nothing
// cached, as "collection record" lines.
func (f *tamperFixture) readExport(jobID string) ([]string, error) {
	var got []string
	err := f.sealed().EachExportRecord(context.Background(), jobID, func(c string, data json.RawMessage) error {
		got = append(got, c+" "+string(data))
		return nil
	})
	return got, err
}

// An export sealed in chunks of many records reads back record for
// record; one whose chunks are deleted, swapped, altered, cut, moved to
// another collection or mixed with the other form fails to read, never
// read as a shorter or other export.
func TestExportChunksCutOrAltered(t *testing.T) {
	jobID := dsr.JobID("r1", "shop", dsr.ActionExport)
	tests := []struct {
		name, sql string
	}{
		{"a chunk deleted in the middle", `DELETE FROM export_records WHERE job_id = ? AND seq = 2`},
		{"the last chunk deleted", `DELETE FROM export_records WHERE job_id = ? AND seq = 3`},
		{"the end chunk deleted", `DELETE FROM export_records WHERE job_id = ? AND seq = 4`},
		{"the first chunk deleted", `DELETE FROM export_records WHERE job_id = ? AND seq = 1`},
		{"two chunks of a collection swapped", `UPDATE export_records SET data = (SELECT data FROM export_records e WHERE e.job_id = export_records.job_id AND e.seq = 3 - export_records.seq) WHERE job_id = ? AND seq IN (1, 2)`},
		{"a chunk moved to another collection", `UPDATE export_records SET collection = 'orders' WHERE job_id = ? AND seq = 2`},
		{"a chunk altered", `UPDATE export_records SET data = substr(data, 1, length(data) / 2) || CASE substr(data, length(data) / 2 + 1, 1) WHEN 'A' THEN 'B' ELSE 'A' END || substr(data, length(data) / 2 + 2) WHERE job_id = ? AND seq = 2`},
		{"a chunk cut short", `UPDATE export_records SET data = substr(data, 1, length(data) - 41) || '"' WHERE job_id = ? AND seq = 2`},
		{"a chunk's prefix removed", `UPDATE export_records SET data = '"' || substr(data, 8) WHERE job_id = ? AND seq = 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTamperFixture(t)
			f.file(t, "r1", "ada@example.com")
			want := f.writeChunkedExport(t, jobID)
			if got, err := f.readExport(jobID); err != nil || !slices.Equal(got, want) {
				t.Fatalf("before: %d records (%v); want the %d written", len(got), err, len(want))
			}
			if f.execRows(t, tt.sql, jobID) == 0 {
				t.Fatal("nothing changed")
			}
			got, err := f.readExport(jobID)
			if err == nil {
				t.Fatalf("after: %d records and no error", len(got))
			}
			t.Logf("after: %v", err)
		})
	}
}

// An export stored before chunks, one sealed record per driver record,
// still reads exactly as it was written; so does one in chunks.
func TestExportFormsRead(t *testing.T) {
	ctx := context.Background()
	jobID := dsr.JobID("r1", "shop", dsr.ActionExport)
	records := []struct{ collection, doc string }{
		{"customers", `{"id":1,"name":"Zoë \"Q\" O'Brien","note":"line one\nline two","tags":["<a>","&"]}`},
		{"customers", `{"id":2,"name":"李小龍","x":null}`},
		{"orders", `{"id":10,"total":24.49,"items":[{"sku":"A","qty":1}]}`},
		{"orders", `{"id":11,"placed_at":"2024-01-01T00:01:00Z"}`},
		{"tickets", `{}`},
	}
	for _, form := range []string{"sealed records", "chunks"} {
		t.Run(form, func(t *testing.T) {
			f := newTamperFixture(t)
			f.file(t, "r1", "ada@example.com")
			var newWriter func(*sealedstore.Store, *dsr.Job) (dsr.ExportWriter, error) // chunks
			if form == "sealed records" {
				newWriter = func(s *sealedstore.Store, j *dsr.Job) (dsr.ExportWriter, error) {
					return sealedstore.NewRecordExportWriter(ctx, s, j)
				}
			}
			w := exportWriter(t, f.sealed(), jobID, newWriter)
			var want []string
			for _, r := range records {
				if err := w.WriteRecord(ctx, r.collection, json.RawMessage(r.doc)); err != nil {
					t.Fatal(err)
				}
				want = append(want, r.collection+" "+r.doc)
			}
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			wantRows := len(records) + 1
			if form == "chunks" {
				wantRows = 3 + 1 // a chunk a collection, and the end
			}
			if got := f.exportRows(t, jobID); got != wantRows {
				t.Fatalf("%d export records stored; want %d", got, wantRows)
			}
			got, err := f.readExport(jobID)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("read back (%v):\n%s\nwant:\n%s", err, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// A request's sealed values copied into another with its wrapped data key,
// and the other made to name it as the request it appeals (appeal_of, in
// clear), must not open there either: the exception for an appeal's
// copies must not be one anybody with the file can claim.
func TestMovedValuesDoNotOpenAsAnAppeal(t *testing.T) {
	ctx := context.Background()
	f := newTamperFixture(t)
	f.file(t, "r1", "ada@example.com")
	f.file(t, "r2", "grace@example.com")
	f.exec(t, `UPDATE requests SET appeal_of = 'r2', doc = json_set(doc,
		'$.appeal_of', 'r2',
		'$.data_key', (SELECT json_extract(doc, '$.data_key') FROM requests WHERE id = 'r2'),
		'$.identities[0].value', (SELECT json_extract(doc, '$.identities[0].value') FROM requests WHERE id = 'r2'),
		'$.note', (SELECT json_extract(doc, '$.note') FROM requests WHERE id = 'r2')) WHERE id = 'r1'`)
	if r, err := f.sealed().Request(ctx, "r1"); !errors.Is(err, envelope.ErrAuth) {
		t.Fatalf("Request(r1) with r2's key and values, naming r2 as appealed = %q, %v; want an authentication error", r.Identities, err)
	}
}

// A request stored in clear (before sealing) that is denied and appealed
// gets an appeal sealed like any new request: never a request without keys
// whose later values would be written in clear.
func TestAppealOfClearRequestIsSealed(t *testing.T) {
	ctx := context.Background()
	f := newTamperFixture(t)
	r := &dsr.Request{ID: "old", Type: dsr.TypeDeletion, Regulation: dsr.RegulationVCDPA, Status: dsr.StatusDenied, Source: "agent_api",
		Identities:  []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}},
		DenialBasis: dsr.DeniedOther, ReceivedAt: f.now, DueAt: f.now.Add(time.Hour), UpdatedAt: f.now,
		History: []dsr.Transition{{To: dsr.StatusVerified, At: f.now, Actor: "agent"}, {From: dsr.StatusVerified, To: dsr.StatusDenied, At: f.now, Actor: "agent"}}}
	if err := f.inner.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	a, err := f.sealed().Appeal(ctx, "old", dsr.AppealFiling{Actor: "desk", Reason: "new proof"})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Identities) != 1 || a.Identities[0].Value != "ada@example.com" {
		t.Fatalf("appeal identities %q", a.Identities)
	}
	raw, err := f.inner.Request(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if raw.DataKey == "" || raw.ExportKey == "" || raw.Identities[0].Value == "ada@example.com" {
		t.Errorf("the appeal was stored without keys or in clear: keys %q %q, identity %q", raw.DataKey, raw.ExportKey, raw.Identities[0].Value)
	}
}

// After a request's identities are purged, an answer to its job still
// waiting is refused rather than stored (in clear, there being no key).
func TestAnswerAfterPurgeRefused(t *testing.T) {
	ctx := context.Background()
	f := newTamperFixture(t)
	f.file(t, "r1", "ada@example.com")
	s := f.sealed()
	if _, err := s.Transition(ctx, "r1", dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "agent"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeIdentities(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	err := f.sealed().AnswerJob(ctx, dsr.JobID("r1", "shop", dsr.ActionExport), "op-1", []byte(`{"email":"ada@example.com"}`))
	if !errors.Is(err, dsr.ErrJobNotWaiting) {
		t.Errorf("AnswerJob after the purge: %v; want ErrJobNotWaiting", err)
	}
}

// A change stored on a request that does not open (its values altered) is
// returned with its values withheld, not as an error: its caller audits it
// and sends its notices.
func TestChangeOfUnreadableRequestReturned(t *testing.T) {
	ctx := context.Background()
	f := newTamperFixture(t)
	f.file(t, "r1", "ada@example.com")
	f.file(t, "r2", "grace@example.com")
	f.exec(t, `UPDATE requests SET doc = json_set(doc, '$.identities[0].value', (SELECT json_extract(doc, '$.identities[0].value') FROM requests WHERE id = 'r2')) WHERE id = 'r1'`)
	r, err := f.sealed().Assign(ctx, "r1", "desk")
	if err != nil || r.AssignedTo != "desk" || r.Identities[0].Value != "" {
		t.Fatalf("Assign = %+v, %v; want it assigned, values withheld", r, err)
	}
}

// The chunk writer stores a dsr.CompactJSON byte for byte and checks and
// compacts a json.RawMessage; a record that is not JSON, or a CompactJSON
// that breaks its promise with a newline (which would split it in two
// records), is refused.
func TestExportChunkRecordsAsGiven(t *testing.T) {
	ctx := context.Background()
	jobID := dsr.JobID("r1", "shop", dsr.ActionExport)
	f := newTamperFixture(t)
	f.file(t, "r1", "ada@example.com")
	w := exportWriter(t, f.sealed(), jobID, nil)
	for _, bad := range []any{json.RawMessage(`{"a":`), dsr.CompactJSON("{\"a\":\n1}"), func() {}} {
		if err := w.WriteRecord(ctx, "c", bad); err == nil {
			t.Errorf("WriteRecord(%T) took it", bad)
		}
	}
	docs := []any{dsr.CompactJSON(`{"a":"<b>&","n":1.50}`), json.RawMessage(`{ "b" : [1, 2] }`), map[string]string{"c": "<d>"}}
	for _, d := range docs {
		if err := w.WriteRecord(ctx, "c", d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{`c {"a":"<b>&","n":1.50}`, `c {"b":[1,2]}`, `c {"c":"<d>"}`}
	if got, err := f.readExport(jobID); err != nil || !slices.Equal(got, want) {
		t.Fatalf("read back %q, %v; want %q", got, err, want)
	}
}
