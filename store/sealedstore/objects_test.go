package sealedstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
	"github.com/dsar-project/dsar/store/s3exports"
	"github.com/dsar-project/dsar/store/sealedstore"
)

// exportFixture is a sealed store of its own keeping exports in a bucket
// of its own, and an access request of one email with its export job.
type exportFixture struct {
	s3   *testenv.S3
	b    *s3exports.Bucket
	ts   *teststore.Store
	keys *envelope.Keyring
	s    *sealedstore.Store
	r    *dsr.Request
	job  dsr.Job
}

func newExportFixture(t *testing.T, email string) *exportFixture {
	t.Helper()
	ctx := context.Background()
	f := &exportFixture{s3: testenv.StartS3(t, "exports"), ts: teststore.Open(t, nil), keys: ring(t)}
	var err error
	f.b, err = s3exports.Open(ctx, s3exports.Config{Endpoint: f.s3.Endpoint, CAFile: f.s3.CAFile, Bucket: "exports", AccessKeyID: "id", SecretAccessKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	f.s = sealedstore.New(f.ts.Sealed.Inner(), f.keys, sealedstore.Options{Exports: f.b})
	index, _ := dsr.NewBlindIndex(make([]byte, 32))
	f.r, err = dsr.NewRequest(dsr.Intake{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Source: "t", FiledBy: "t", Status: dsr.StatusVerified,
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: email, Source: dsr.SourceSubject}}}, index)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.CreateRequest(ctx, f.r); err != nil {
		t.Fatal(err)
	}
	f.job = dsr.NewJob(f.r.ID, "shop", dsr.ActionExport, f.r.ReceivedAt)
	if err := f.s.CreateJobs(ctx, []dsr.Job{f.job}); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestExportObjects keeps an export in an S3 bucket: the object holds no
// record in clear, reads back in order, fails loudly when cut or altered
// (never a short export), and goes with the request's exports purge.
func TestExportObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newExportFixture(t, "marker-ada@example.com")
	s3, b, ts, s, r, job := f.s3, f.b, f.ts, f.s, f.r, f.job
	w, err := s.NewExportWriter(ctx, &job)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 { // several 64 KiB segments
		coll := "customers"
		if i >= 1500 {
			coll = "orders"
		}
		if err := w.WriteRecord(ctx, coll, map[string]any{"n": i, "email": "marker-ada@example.com", "note": "<b>&</b>"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteRecord(ctx, "customers", map[string]any{"n": -1}); err == nil {
		t.Fatal("going back to a collection already left was accepted")
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ts.Count(t, "export_records"); got != 0 {
		t.Errorf("the store holds %d export records; want none (they are in the bucket)", got)
	}

	objects := s3.Objects(t, "exports", "exports/")
	if len(objects) != 1 {
		t.Fatalf("the bucket holds %d objects; want 1 (the job's)", len(objects))
	}
	var name string
	var raw []byte
	for name, raw = range objects {
	}
	if bytes.Contains(raw, []byte("marker-ada")) || bytes.Contains(raw, []byte("customers")) {
		t.Fatal("the object holds the records in clear")
	}

	read := func() (int, error) {
		n := 0
		err := s.EachExportRecord(ctx, job.ID, func(coll string, data json.RawMessage) error {
			var rec struct{ N int }
			if err := json.Unmarshal(data, &rec); err != nil {
				return err
			}
			if rec.N != n || (coll == "orders") != (n >= 1500) || !strings.Contains(string(data), `"<b>&</b>"`) {
				t.Fatalf("record %d: %s in %s", n, data, coll)
			}
			n++
			return nil
		})
		return n, err
	}
	if n, err := read(); err != nil || n != 3000 {
		t.Fatalf("read back %d records, %v; want 3000", n, err)
	}

	for _, tamper := range []struct {
		name string
		body []byte
	}{
		{"cut at a segment boundary", raw[:len(raw)/2]},
		{"a byte flipped", func() []byte { c := bytes.Clone(raw); c[len(c)/3] ^= 1; return c }()},
	} {
		if err := b.Put(ctx, strings.TrimPrefix(name, ""), bytes.NewReader(tamper.body), int64(len(tamper.body))); err != nil {
			t.Fatal(err)
		}
		if n, err := read(); err == nil {
			t.Errorf("%s: read %d records and no error", tamper.name, n)
		}
	}

	if _, err := s.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.PurgeExports(ctx, r.ID); err != nil || !ok {
		t.Fatalf("purge exports: %v, %v", ok, err)
	}
	if left := s3.Objects(t, "exports", "exports/"); len(left) != 0 {
		t.Fatalf("%d objects left after the purge", len(left))
	}
}

// TestExportObjectGone: a succeeded job's export object deleted from the
// bucket (by hand, a lifecycle rule, a bucket emptied), or the bucket's
// settings dropped while exports are kept there, must fail the read, not
// read as an export with no record (a download of an empty package whose
// manifest counts records that are not in it).
func TestExportObjectGone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newExportFixture(t, "ada@example.com")
	s3, b, ts, keys, s, job := f.s3, f.b, f.ts, f.keys, f.s, f.job
	claimed, err := s.ClaimJob(ctx, job.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.NewExportWriter(ctx, claimed)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRecord(ctx, "customers", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishJob(ctx, claimed, dsr.Outcome{Status: dsr.JobSucceeded, Records: 1}); err != nil {
		t.Fatal(err)
	}
	count := func(s *sealedstore.Store) (int, error) {
		n := 0
		err := s.EachExportRecord(ctx, job.ID, func(string, json.RawMessage) error { n++; return nil })
		return n, err
	}
	if n, err := count(s); err != nil || n != 1 {
		t.Fatalf("read back %d records, %v; want 1", n, err)
	}
	// The bucket's settings dropped: the store has no record of the job.
	if n, err := count(sealedstore.New(ts.Sealed.Inner(), keys, sealedstore.Options{})); err == nil {
		t.Errorf("without the bucket: read %d records and no error", n)
	}
	for name := range s3.Objects(t, "exports", "exports/") {
		if err := b.Remove(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := count(s); err == nil {
		t.Errorf("object deleted: read %d records and no error", n)
	}
}

// TestExportObjectDiscarded: an export into an object that fails before
// its Flush (the connector failed) can be discarded, which closes its
// buffer file now: a failed export of a large package does not hold its
// disk space until the garbage collector runs.
func TestExportObjectDiscarded(t *testing.T) {
	ctx := context.Background()
	f := newExportFixture(t, "ada@example.com")
	s, job := f.s, f.job
	buffers := func() int {
		n := 0
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, fd := range fds {
			if target, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.Contains(target, "dsar-export-") {
				n++
			}
		}
		return n
	}
	w, err := s.NewExportWriter(ctx, &job)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRecord(ctx, "customers", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if buffers() != 1 {
		t.Skipf("the export's buffer file is not seen in /proc/self/fd (%d)", buffers())
	}
	d, ok := w.(interface{ Discard() })
	if !ok {
		t.Fatal("the object writer cannot be discarded")
	}
	d.Discard()
	if n := buffers(); n != 0 {
		t.Errorf("%d export buffer files still open after Discard", n)
	}
	if got := f.s3.Objects(t, "exports", "exports/"); len(got) != 0 {
		t.Errorf("a discarded export left %d objects", len(got))
	}
}
