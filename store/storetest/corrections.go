package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// TestCorrections: a correction's changes (hashes and new values) and a
// correct job's evidence per field are stored as given; the purge of the
// identities takes the new values too, and keeps the hashes.
func testCorrections(t *testing.T, f fixture) {
	ctx := context.Background()
	r, err := dsr.NewRequest(dsr.Intake{
		Type: dsr.TypeCorrection, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "tester", Status: dsr.StatusVerified,
		Identities:  []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}},
		Corrections: []dsr.FieldValue{{Field: "name", Value: `Ada "King"; {"$ne": 1}`}, {Field: "email", Value: "ada.king@example.com"}},
		ReceivedAt:  f.clock.Now(),
	}, f.index)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r.Corrections, got.Corrections); diff != "" {
		t.Errorf("corrections (-want +got):\n%s", diff)
	}
	want := []dsr.FieldValue{{Field: "name", Value: `Ada "King"; {"$ne": 1}`}, {Field: "email", Value: "ada.king@example.com"}}
	if diff := cmp.Diff(want, got.CorrectionValues()); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}

	if _, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	j := dsr.NewJob(r.ID, "crm", dsr.ActionCorrect, f.clock.Now())
	if err := f.store.CreateJobs(ctx, []dsr.Job{j}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.FannedOut(ctx, r.ID, 1, "t"); err != nil {
		t.Fatal(err)
	}
	claimed, err := f.store.ClaimJob(ctx, j.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cols := []dsr.CollectionResult{{Name: "profiles", Outcome: "corrected", Records: 1, Changes: []dsr.FieldChange{
		{Field: "name", Old: []string{"correction:name:aa", "correction:name:bb"}, New: "correction:name:cc"},
		{Field: "email", New: "correction:email:dd"},
	}}}
	if err := f.store.FinishJob(ctx, claimed, dsr.Outcome{Status: dsr.JobSucceeded, Records: 1, Collections: cols}); err != nil {
		t.Fatal(err)
	}
	done, err := f.store.Job(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cols, done.Collections); diff != "" {
		t.Errorf("job collections (-want +got):\n%s", diff)
	}
	if to, err := f.store.JobFinished(ctx, r.ID, false, "t"); err != nil || to != dsr.StatusCompleted {
		t.Fatalf("JobFinished = %q, %v", to, err)
	}
	if ok, err := f.store.PurgeIdentities(ctx, r.ID); err != nil || !ok {
		t.Fatalf("PurgeIdentities = %v, %v", ok, err)
	}
	purged, err := f.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(purged.NewValues) != 0 || purged.CorrectionValues() != nil {
		t.Errorf("new values after the purge: %v", purged.NewValues)
	}
	if diff := cmp.Diff(r.Corrections, purged.Corrections); diff != "" {
		t.Errorf("evidence after the purge (-want +got):\n%s", diff)
	}
}
