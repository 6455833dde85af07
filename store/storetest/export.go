package storetest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// testExportRecordsAreJSON: records are plain Go values that the writer
// encodes as JSON (characters as given, no HTML escaping; a json.RawMessage
// as it is), read back as written, in order.
func testExportRecordsAreJSON(t *testing.T, f fixture) {
	s := f.store
	ctx := context.Background()
	r := f.inProgress(t, dsr.TypeAccess, "ada@example.com") // an export is always some request's
	job := dsr.NewJob(r.ID, "shop", dsr.ActionExport, f.clock.Now())
	w, err := s.NewExportWriter(ctx, &job)
	if err != nil {
		t.Fatal(err)
	}
	type order struct {
		ID    string   `json:"id"`
		Items []string `json:"items"`
	}
	for _, rec := range []any{
		map[string]any{"email": "ada@example.com", "note": "<b>&</b>", "n": 1},
		order{ID: "ord_1", Items: []string{"manual"}},
		json.RawMessage(`{"_id":{"$oid":"659f00000000000000000001"}}`),
	} {
		if err := w.WriteRecord(ctx, "customers", rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteRecord(ctx, "customers", func() {}); err == nil {
		t.Error("a record JSON cannot encode was written")
	}
	if err := w.Flush(ctx); err != nil {
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
		`customers {"id":"ord_1","items":["manual"]}`,
		`customers {"_id":{"$oid":"659f00000000000000000001"}}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}
