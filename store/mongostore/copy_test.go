package mongostore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/store"
)

// TestCopyDocuments stores documents as a copy does and reads them back by
// key: requests by _id, export records by job id then seq (with or without
// an _id of their own), resumable after any key, each stored once.
func TestCopyDocuments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t)
	s := f.store
	marshal := func(d bson.D) bson.Raw {
		b, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var records []bson.Raw
	for _, job := range []string{"r1:shop:export", "r1:shop1:export"} {
		for seq := int64(1); seq <= 3; seq++ {
			d := bson.D{{Key: "job_id", Value: job}, {Key: "request_id", Value: "r1"}, {Key: "collection", Value: "c"},
				{Key: "seq", Value: seq}, {Key: "data", Value: fmt.Sprintf(`{"n":%d}`, seq)}}
			if seq == 2 { // from MongoDB: with an _id
				d = append(bson.D{{Key: "_id", Value: bson.NewObjectID()}}, d...)
			}
			records = append(records, marshal(d))
		}
	}
	if n, err := s.PutDocuments(ctx, store.ExportRecords, records[:4]); err != nil || n != 4 {
		t.Fatalf("put: %d, %v", n, err)
	}
	if n, err := s.PutDocuments(ctx, store.ExportRecords, records); err != nil || n != 2 {
		t.Fatalf("put again: %d stored, %v; want the 2 new ones", n, err)
	}
	if n, err := s.Count(ctx, store.ExportRecords); err != nil || n != 6 {
		t.Fatalf("count: %d, %v", n, err)
	}
	// By job id ("r1:shop1:..." before "r1:shop:...": '1' < ':'), then seq.
	all := []string{"r1:shop1:export:000000000001", "r1:shop1:export:000000000002", "r1:shop1:export:000000000003",
		"r1:shop:export:000000000001", "r1:shop:export:000000000002", "r1:shop:export:000000000003"}
	for i, after := range append([]string{""}, all...) {
		var keys []string
		err := s.EachDocument(ctx, store.ExportRecords, after, func(key string, _ bson.Raw) error {
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

	// Requests: by _id, as stored.
	a, b := f.newRequest(t, "access", "a@example.com"), f.newRequest(t, "access", "b@example.com")
	want := []string{a.ID, b.ID}
	if want[0] > want[1] {
		want[0], want[1] = want[1], want[0]
	}
	var keys []string
	var first bson.Raw
	err := s.EachDocument(ctx, store.Requests, "", func(key string, doc bson.Raw) error {
		keys = append(keys, key)
		if first == nil {
			first = append(bson.Raw(nil), doc...)
		}
		return nil
	})
	if err != nil || !cmp.Equal(keys, want) {
		t.Fatalf("requests: %v, %v; want %v", keys, err, want)
	}
	if n, err := s.PutDocuments(ctx, store.Requests, []bson.Raw{first}); err != nil || n != 0 {
		t.Errorf("a request stored again: %d, %v", n, err)
	}
	if last, err := s.LastKey(ctx, store.Requests); err != nil || last != want[1] {
		t.Errorf("last request: %q, %v", last, err)
	}
	if has, err := s.HasKey(ctx, store.Requests, want[0]); err != nil || !has {
		t.Errorf("has request %s: %v, %v", want[0], has, err)
	}
	if _, err := s.Count(ctx, "health"); err == nil {
		t.Error("a collection that is none of store.Collections was accepted")
	}
}
