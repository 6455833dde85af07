package sqlitestore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// TestEachCompletionPages: more completions than a page, several closed
// at one instant, are each reported once.
func TestEachCompletionPages(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	n := 2*batch + 5
	for i := range n {
		if i%3 == 0 { // three closed at each instant, so pages end within an instant
			f.clock.Add(time.Minute)
		}
		r := f.verified(t, dsr.TypeAccess, fmt.Sprintf("p%d@example.com", i))
		f.move(t, r.ID, dsr.StatusVerified, dsr.StatusCancelled)
	}
	// Cancelled is no completion: complete them through the store's rows.
	if _, err := f.store.w.ExecContext(ctx, `UPDATE requests SET status = ?`, string(dsr.StatusCompleted)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	if err := f.store.EachCompletion(ctx, time.Time{}, func(c *dsr.Completion) error { seen[c.ID]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Errorf("%d completions reported, want %d", len(seen), n)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("completion %s reported %d times", id, n)
		}
	}
}

func TestCountWaitingJobs(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	if got, err := f.store.CountWaitingJobs(ctx); err != nil || got == nil || len(got) != 0 {
		t.Errorf("waiting jobs of an empty store = %#v, %v; want an empty list", got, err)
	}
	wait := func(j dsr.Job) {
		t.Helper()
		c, err := f.store.ClaimJob(ctx, j.ID, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		poll := f.clock.Now().Add(time.Hour)
		if err := f.store.FinishJob(ctx, c, dsr.Outcome{Status: dsr.JobWaiting, Handle: "h", PollAt: poll, WaitUntil: poll}); err != nil {
			t.Fatal(err)
		}
	}
	a := f.verified(t, dsr.TypeAccess, "ada@example.com")
	b := f.verified(t, dsr.TypeDeletion, "grace@example.com")
	ja := f.jobsFor(t, a, dsr.ActionExport, "shop", "crm")
	jb := f.jobsFor(t, b, dsr.ActionErase, "shop", "crm")
	jc := f.jobsFor(t, a, dsr.ActionErase, "shop")
	wait(ja[0])
	wait(jb[0])
	wait(jc[0])
	wait(ja[1])
	f.runJob(t, jb[1].ID, dsr.JobSucceeded) // not waiting
	got, err := f.store.CountWaitingJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(x, y dsr.JobCount) int {
		return strings.Compare(x.Connector+string(x.Action), y.Connector+string(y.Action))
	})
	want := []dsr.JobCount{
		{Connector: "crm", Action: dsr.ActionExport, N: 1},
		{Connector: "shop", Action: dsr.ActionErase, N: 2},
		{Connector: "shop", Action: dsr.ActionExport, N: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("waiting jobs (-want +got):\n%s", diff)
	}
}
