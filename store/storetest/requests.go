package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
)

func testCreateAndRead(t *testing.T, f fixture) {
	ctx := context.Background()
	want := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	got, err := f.store.Request(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Stored, its "filed" entry went to the audit chain.
	want.Audited, want.AuditDue = 1, false
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	if len(got.IdentityHashes) != 1 || got.IdentityHashes[0] != f.index.Hash(dsr.KindEmail, "ada@example.com") {
		t.Errorf("identity hashes = %v", got.IdentityHashes)
	}
	if !got.DueAt.Equal(time.Date(2026, 12, 24, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("due at %s", got.DueAt)
	}
	if _, err := f.store.Request(ctx, "01a20d27-0000-7000-8000-000000000000"); !errors.Is(err, dsr.ErrNotFound) {
		t.Errorf("unknown id: err = %v, want ErrNotFound", err)
	}
}

func testTransitionIsConditional(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.newRequest(t, dsr.TypeDeletion, "ada@example.com")

	const actors = 8
	var wg sync.WaitGroup
	errs := make([]error, actors)
	for i := range actors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: fmt.Sprint("actor", i)})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, dsr.ErrConflict):
			t.Errorf("loser got %v, want ErrConflict", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d actors moved the request, want exactly 1", won)
	}
	got, err := f.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != dsr.StatusInProgress || len(got.History) != 2 || got.History[1].From != dsr.StatusVerified {
		t.Errorf("after the race: status %s, history %+v", got.Status, got.History)
	}

	if _, err := f.store.Transition(ctx, r.ID, dsr.StatusInProgress, dsr.StatusVerified, dsr.Change{}); !errors.Is(err, dsr.ErrInvalidTransition) {
		t.Errorf("backwards move: err = %v, want ErrInvalidTransition", err)
	}
	if _, err := f.store.Transition(ctx, "01a20d27-0000-7000-8000-000000000000", dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{}); !errors.Is(err, dsr.ErrNotFound) {
		t.Errorf("unknown id: err = %v, want ErrNotFound", err)
	}
	done, err := f.store.Transition(ctx, r.ID, dsr.StatusInProgress, dsr.StatusCompleted, dsr.Change{Actor: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if done.ClosedAt == nil {
		t.Error("completed request has no closed_at")
	}
}

func testListRequests(t *testing.T, f fixture) {
	ctx := context.Background()
	// Five requests, received a day apart, under regulations with
	// different windows, so the due order differs from the filing order.
	specs := []struct {
		typ dsr.Type
		reg dsr.Regulation
	}{
		{dsr.TypeAccess, dsr.RegulationGDPR},   // 0: due day 0 + 1 month
		{dsr.TypeDeletion, dsr.RegulationLGPD}, // 1: due day 1 + 15 days
		{dsr.TypeAccess, dsr.RegulationCCPA},   // 2: due day 2 + 45 days
		{dsr.TypeOptOut, dsr.RegulationLGPD},   // 3: due day 3 + 15 days
		{dsr.TypeAccess, dsr.RegulationLGPD},   // 4: due day 4 + 15 days
	}
	var ids []string
	for i, sp := range specs {
		r := f.requestValue(t, sp.typ, fmt.Sprintf("p%d@example.com", i))
		r.Regulation, r.DueAt = sp.reg, dsr.DueAt(sp.reg, sp.typ, r.ReceivedAt)
		if err := f.store.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		f.clock.Add(24 * time.Hour)
		time.Sleep(2 * time.Millisecond) // distinct UUIDv7 milliseconds keep the newest order strict
	}
	if _, err := f.store.Transition(ctx, ids[2], dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Transition(ctx, ids[1], dsr.StatusVerified, dsr.StatusDenied, dsr.Change{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Assign(ctx, ids[4], "desk"); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	day := func(n int) *time.Time { d := start.AddDate(0, 0, n); return &d }
	collect := func(filter dsr.ListFilter) []string {
		t.Helper()
		var out []string
		for {
			page, next, err := f.store.ListRequests(ctx, filter)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > filter.Limit {
				t.Fatalf("page of %d over limit %d", len(page), filter.Limit)
			}
			for _, r := range page {
				out = append(out, r.ID)
			}
			if next == nil {
				return out
			}
			filter.After = next
		}
	}
	tests := []struct {
		name   string
		filter dsr.ListFilter
		want   []string
	}{
		{"by due date", dsr.ListFilter{Limit: 2}, []string{ids[1], ids[3], ids[4], ids[0], ids[2]}},
		{"newest first", dsr.ListFilter{Sort: dsr.SortNewest, Limit: 2}, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"by type", dsr.ListFilter{Type: dsr.TypeAccess, Limit: 1}, []string{ids[4], ids[0], ids[2]}},
		{"by regulation", dsr.ListFilter{Regulation: dsr.RegulationLGPD, Limit: 10}, []string{ids[1], ids[3], ids[4]}},
		{"by status and type", dsr.ListFilter{Status: dsr.StatusVerified, Type: dsr.TypeAccess, Limit: 10}, []string{ids[4], ids[0]}},
		{"by assignee", dsr.ListFilter{AssignedTo: "desk", Limit: 10}, []string{ids[4]}},
		{"by source", dsr.ListFilter{Source: "test", Limit: 3}, []string{ids[1], ids[3], ids[4], ids[0], ids[2]}},
		{"due window", dsr.ListFilter{DueAfter: day(17), DueBefore: day(31), Limit: 10}, []string{ids[3], ids[4], ids[0]}},
		{"overdue at day 19", dsr.ListFilter{Overdue: true, Now: *day(19), Limit: 10}, []string{ids[3]}},
		{"nothing", dsr.ListFilter{Status: dsr.StatusCancelled, Limit: 10}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, collect(tt.filter)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func testJobLifecycle(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.newRequest(t, dsr.TypeDeletion, "ada@example.com")
	if _, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{}); err != nil {
		t.Fatal(err)
	}
	jobs := []dsr.Job{dsr.NewJob(r.ID, "crm", dsr.ActionErase, f.clock.Now()), dsr.NewJob(r.ID, "shop", dsr.ActionErase, f.clock.Now())}
	for range 2 { // the second time is a no-op
		if err := f.store.CreateJobs(ctx, jobs); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.store.Jobs(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != r.ID+":crm:erase" || got[1].ID != r.ID+":shop:erase" || got[0].Status != dsr.JobPending {
		t.Fatalf("jobs = %+v; want crm then shop, pending", got)
	}
	if none, err := f.store.Jobs(ctx, missingID); err != nil || none == nil || len(none) != 0 {
		t.Errorf("jobs of no request = %#v, %v; want an empty list", none, err)
	}

	const lease = time.Minute
	first, err := f.store.ClaimJob(ctx, jobs[0].ID, lease)
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != dsr.JobRunning || first.Attempts != 1 || first.LeaseUntil == nil || !first.LeaseUntil.Equal(f.clock.Now().Add(lease)) {
		t.Errorf("claimed job: %+v", first)
	}
	if _, err := f.store.ClaimJob(ctx, jobs[0].ID, lease); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("claim under a live lease: err = %v, want ErrConflict", err)
	}
	f.clock.Add(lease + time.Second) // the first worker died
	second, err := f.store.ClaimJob(ctx, jobs[0].ID, lease)
	if err != nil {
		t.Fatalf("claim after the lease expired: %v", err)
	}
	if second.Attempts != 2 {
		t.Errorf("second claim attempts = %d, want 2", second.Attempts)
	}
	if err := f.store.FinishJob(ctx, first, dsr.Outcome{Status: dsr.JobSucceeded}); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("stale attempt finishing: err = %v, want ErrConflict", err)
	}
	dataMap := &dsr.DataMap{Purpose: "orders", Categories: []string{"contact details", "orders"}, Recipients: []string{"carrier"},
		Retention: "6 years", Source: "the person", LegalBasis: "contract"}
	if err := f.store.FinishJob(ctx, second, dsr.Outcome{Status: dsr.JobSucceeded, Records: 3,
		Collections: []dsr.CollectionResult{{Name: "customers", Records: 3, Outcome: "deleted"}}, DataMap: dataMap}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.FinishJob(ctx, second, dsr.Outcome{Status: dsr.JobFailed}); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("finishing a finished job: err = %v, want ErrConflict", err)
	}
	if _, err := f.store.ClaimJob(ctx, jobs[0].ID, lease); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("claiming a finished job: err = %v, want ErrConflict", err)
	}
	if to, err := f.store.Settle(ctx, r.ID, "t"); err != nil || to != "" {
		t.Errorf("settle with a job open = %q, %v; want no change", to, err)
	}
	other, err := f.store.ClaimJob(ctx, jobs[1].ID, lease)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.FinishJob(ctx, other, dsr.Outcome{Status: dsr.JobFailed, Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	// Every job is terminal, but the fan-out has not marked the request:
	// more jobs may be coming, so it stays open.
	if to, err := f.store.Settle(ctx, r.ID, "t"); err != nil || to != "" {
		t.Errorf("settle before the fan-out finished = %q, %v; want no change", to, err)
	}
	if err := f.store.MarkFannedOut(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if to, err := f.store.Settle(ctx, r.ID, "t"); err != nil || to != dsr.StatusNeedsAttention {
		t.Errorf("settle with a failed job = %q, %v; want needs_attention", to, err)
	}
	if to, err := f.store.Settle(ctx, r.ID, "t"); err != nil || to != "" {
		t.Errorf("settling twice = %q, %v; want no change", to, err)
	}
	done, err := f.store.Job(ctx, jobs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Records != 3 || done.LeaseUntil != nil || done.FinishedAt == nil || !done.FinishedAt.Equal(f.clock.Now()) ||
		done.Recorded != 1 || len(done.Collections) != 1 || !done.RecordsIncomplete || !cmp.Equal(done.DataMap, dataMap) {
		// The first attempt was killed unrecorded: what the erase changed
		// then is unknown.
		t.Errorf("finished job = %+v", done)
	}
	if _, err := f.store.Settle(ctx, missingID, "t"); !errors.Is(err, dsr.ErrNotFound) {
		t.Errorf("settling a missing request: %v, want ErrNotFound", err)
	}
}

func testStaleWork(t *testing.T, f fixture) {
	ctx := context.Background()
	verified := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	moving := f.newRequest(t, dsr.TypeAccess, "grace@example.com")
	if _, err := f.store.Transition(ctx, moving.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{}); err != nil {
		t.Fatal(err)
	}
	closed := f.newRequest(t, dsr.TypeAccess, "alan@example.com")
	if _, err := f.store.Transition(ctx, closed.ID, dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{}); err != nil {
		t.Fatal(err)
	}
	pending := dsr.NewJob(moving.ID, "a", dsr.ActionExport, f.clock.Now())
	running := dsr.NewJob(moving.ID, "b", dsr.ActionExport, f.clock.Now())
	waiting := dsr.NewJob(moving.ID, "c", dsr.ActionExport, f.clock.Now())
	done := dsr.NewJob(moving.ID, "d", dsr.ActionExport, f.clock.Now())
	if err := f.store.CreateJobs(ctx, []dsr.Job{pending, running, waiting, done}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.ClaimJob(ctx, running.ID, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	w, err := f.store.ClaimJob(ctx, waiting.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	poll := f.clock.Now().Add(20 * time.Minute)
	if err := f.store.FinishJob(ctx, w, dsr.Outcome{Status: dsr.JobWaiting, Handle: "h", PollAt: poll, WaitUntil: poll.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f.runJob(t, done.ID, dsr.JobSucceeded)

	staleRequests := func(before time.Time) []string {
		var ids []string
		if err := f.store.EachStaleRequest(ctx, before, func(r *dsr.Request) error { ids = append(ids, r.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	staleJobs := func(before, now time.Time) []string {
		var ids []string
		if err := f.store.EachStaleJob(ctx, before, now, func(j *dsr.Job) error { ids = append(ids, j.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	now := f.clock.Now()
	if got := staleRequests(now); len(got) != 0 {
		t.Errorf("stale requests before the grace = %v", got)
	}
	if got := staleJobs(now, now); len(got) != 0 {
		t.Errorf("stale jobs at once = %v", got)
	}
	later := now.Add(5 * time.Minute)
	if diff := cmp.Diff([]string{verified.ID, moving.ID}, staleRequests(later), sortStrings); diff != "" {
		t.Errorf("stale requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{pending.ID}, staleJobs(later, later)); diff != "" {
		t.Errorf("stale jobs within the lease (-want +got):\n%s", diff)
	}
	afterLease := now.Add(11 * time.Minute)
	if diff := cmp.Diff([]string{pending.ID, running.ID}, staleJobs(afterLease, afterLease), sortStrings); diff != "" {
		t.Errorf("stale jobs after the lease (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{pending.ID, running.ID, waiting.ID}, staleJobs(later, poll), sortStrings); diff != "" {
		t.Errorf("stale jobs at the poll time (-want +got):\n%s", diff)
	}
}

var sortStrings = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func testExportRecords(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.inProgress(t, dsr.TypeAccess, "ada@example.com") // an export is always some request's
	job := dsr.NewJob(r.ID, "shop", dsr.ActionExport, f.clock.Now())
	write := func(n int) {
		w, err := f.store.NewExportWriter(ctx, &job)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			coll := "customers"
			if i >= n/2 {
				coll = "orders"
			}
			if err := w.WriteRecord(ctx, coll, bson.D{{Key: "n", Value: i}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	write(7)   // an attempt that is then retried
	write(250) // the retry replaces it
	var got []int32
	var colls []string
	err := f.store.EachExportRecord(ctx, job.ID, func(coll string, data json.RawMessage) error {
		var rec struct{ N int32 }
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		got = append(got, rec.N)
		if len(colls) == 0 || colls[len(colls)-1] != coll {
			colls = append(colls, coll)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 250 {
		t.Fatalf("read %d records, want 250", len(got))
	}
	for i, n := range got {
		if int(n) != i {
			t.Fatalf("record %d is %d: out of order", i, n)
		}
	}
	if diff := cmp.Diff([]string{"customers", "orders"}, colls); diff != "" {
		t.Errorf("collections in order (-want +got):\n%s", diff)
	}
}

// TestOverdueWithDueBefore: both bounds on the due date in one list (a
// query FerretDB rejected by crashing when the key came twice).
func testOverdueWithDueBefore(t *testing.T, f fixture) {
	r := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	later := r.DueAt.Add(48 * time.Hour)
	for _, before := range []time.Time{r.DueAt.Add(time.Hour), r.DueAt.Add(240 * time.Hour)} {
		got, _, err := f.store.ListRequests(context.Background(), dsr.ListFilter{Overdue: true, Now: later, DueBefore: &before, Limit: 5})
		if err != nil || len(got) != 1 {
			t.Errorf("overdue due before %s: %d requests, %v", before, len(got), err)
		}
	}
	if got, _, _ := f.store.ListRequests(context.Background(), dsr.ListFilter{Overdue: true, Now: later, Status: dsr.StatusCompleted, Limit: 5}); len(got) != 0 {
		t.Errorf("overdue and completed: %d requests, want none", len(got))
	}
}
