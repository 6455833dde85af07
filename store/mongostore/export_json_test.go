package mongostore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store/mongostore"
)

// TestLegacyExportRecordsAreExtendedJSON: records stored as BSON documents
// by an earlier version are read back as relaxed Extended JSON, as exports
// rendered them then, after the records of the writer. (How the writer
// encodes records is a case of the conformance suite, storetest.)
func TestLegacyExportRecordsAreExtendedJSON(t *testing.T) {
	t.Parallel()
	f := setup(t)
	s, db := f.store, f.store.DB()
	ctx := context.Background()
	job := dsr.NewJob("01a20d27-0000-7000-8000-000000000002", "shop", dsr.ActionExport, f.clock.Now())
	w, err := s.NewExportWriter(ctx, &job)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRecord(ctx, "customers", map[string]any{"email": "ada@example.com", "note": "<b>&</b>", "n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A record stored by an earlier version: a BSON document.
	_, err = db.Collection(mongostore.ExportRecordsCollection).InsertOne(ctx, bson.D{{Key: "job_id", Value: job.ID}, {Key: "request_id", Value: job.RequestID},
		{Key: "collection", Value: "orders"}, {Key: "seq", Value: 99}, {Key: "data", Value: bson.D{
			{Key: "_id", Value: bson.ObjectID{0x65, 0x9f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}},
			{Key: "at", Value: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, {Key: "total", Value: 42.5}}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = s.EachExportRecord(ctx, job.ID, func(coll string, data json.RawMessage) error {
		got = append(got, coll+" "+string(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`customers {"email":"ada@example.com","n":1,"note":"<b>&</b>"}`,
		`orders {"_id":{"$oid":"659f00000000000000000002"},"at":{"$date":"2026-01-02T03:04:05Z"},"total":42.5}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

// TestExportReadOrder: records are read in the order of seq. On MongoDB the
// job_seq index serves the sort; FerretDB, which would sort every record of
// the job in memory, is asked for none and reads them as stored, so records
// stored out of seq order fail the read instead of being misplaced.
func TestExportReadOrder(t *testing.T) {
	t.Parallel()
	f := setup(t)
	s, db := f.store, f.store.DB()
	ctx := context.Background()
	const jobID = "01a20d27-0000-7000-8000-000000000003"
	for _, seq := range []int64{2, 1} { // stored out of order
		_, err := db.Collection(mongostore.ExportRecordsCollection).InsertOne(ctx, bson.D{{Key: "job_id", Value: jobID}, {Key: "request_id", Value: "r"},
			{Key: "collection", Value: "orders"}, {Key: "seq", Value: seq}, {Key: "data", Value: fmt.Sprintf(`{"n":%d}`, seq)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	f.cmds.Reset()
	var got []string
	err := s.EachExportRecord(ctx, jobID, func(_ string, data json.RawMessage) error {
		got = append(got, string(data))
		return nil
	})
	var sorted bool
	for _, cmd := range f.cmds.All() {
		if cmd.Name == "find" {
			_, e := cmd.Body.LookupErr("sort")
			sorted = e == nil
		}
	}
	if s.OnFerretDB() {
		if sorted {
			t.Error("asked FerretDB to sort the records, which it does in memory")
		}
		if err == nil || !strings.Contains(err.Error(), "out of order") {
			t.Errorf("records stored out of order on FerretDB: read %v, %v; want an out-of-order error", got, err)
		}
		return
	}
	if !sorted {
		t.Error("asked MongoDB for no sort")
	}
	if diff := cmp.Diff([]string{`{"n":1}`, `{"n":2}`}, got); err != nil || diff != "" {
		t.Errorf("records (-want +got):\n%s%v", diff, err)
	}
}
