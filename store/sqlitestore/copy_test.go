package sqlitestore

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/store"
)

// exportDoc is an export record as MongoDB keeps it, _id and all.
func exportDoc(t *testing.T, job string, seq int64, data any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "job_id", Value: job}, {Key: "request_id", Value: "r1"},
		{Key: "collection", Value: "c"}, {Key: "seq", Value: seq}, {Key: "data", Value: data}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCopyExportRecords stores export records as a copy does and reads them
// back by key: ordered by job id then seq, resumable after any key, each
// stored once, a BSON record stored as JSON.
func TestCopyExportRecords(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	var docs []bson.Raw
	for _, job := range []string{"r1:shop1:export", "r1:shop:export"} {
		for seq := int64(1); seq <= 3; seq++ {
			docs = append(docs, exportDoc(t, job, seq, fmt.Sprintf(`{"n":%d}`, seq)))
		}
	}
	docs = append(docs, exportDoc(t, "r1:legacy:export", 1, bson.D{{Key: "name", Value: "Ada"}})) // a record from before records were JSON
	if n, err := s.PutDocuments(ctx, store.ExportRecords, docs[:4]); err != nil || n != 4 {
		t.Fatalf("put: %d, %v", n, err)
	}
	if n, err := s.PutDocuments(ctx, store.ExportRecords, docs); err != nil || n != 3 {
		t.Fatalf("put again: %d stored, %v; want the 3 new ones", n, err)
	}
	// By job id ("r1:shop1:..." before "r1:shop:...": '1' < ':'), then seq.
	all := []string{"r1:legacy:export:000000000001",
		"r1:shop1:export:000000000001", "r1:shop1:export:000000000002", "r1:shop1:export:000000000003",
		"r1:shop:export:000000000001", "r1:shop:export:000000000002", "r1:shop:export:000000000003"}
	for i, after := range append([]string{""}, all...) {
		var keys []string
		err := s.EachDocument(ctx, store.ExportRecords, after, func(key string, doc bson.Raw) error {
			if _, has := doc.Lookup("_id").StringValueOK(); has || doc.Lookup("data").Type != bson.TypeString {
				return fmt.Errorf("record %s: %s", key, doc)
			}
			keys = append(keys, key)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(all[i:], keys, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("after %q (-want +got):\n%s", after, diff)
		}
	}
	if last, err := s.LastKey(ctx, store.ExportRecords); err != nil || last != all[len(all)-1] {
		t.Errorf("last key: %q, %v", last, err)
	}
	if has, err := s.HasKey(ctx, store.ExportRecords, "r1:shop:export:000000000004"); err != nil || has {
		t.Errorf("has a record never stored: %v, %v", has, err)
	}
	var data string
	if err := s.r.QueryRowContext(ctx, `SELECT data FROM export_records WHERE job_id = 'r1:legacy:export'`).Scan(&data); err != nil || data != `{"name":"Ada"}` {
		t.Errorf("a BSON record stored as %q, %v", data, err)
	}
	if _, err := s.Count(ctx, "requests; DROP TABLE jobs"); err == nil {
		t.Error("a collection name that is none of the store's was accepted")
	}
}
