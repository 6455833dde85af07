package storetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// TestJobCounts: a request counts its jobs from its fan-out's mark on, so
// settling reads no job: a job that finishes before the mark counts too,
// the last one to finish settles, a failure sends the request to
// needs_attention, and an agent's retry counts the retried jobs open again.
func testJobCounts(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.inProgress(t, dsr.TypeDeletion, "ada@example.com")
	var jobs []dsr.Job
	for _, c := range []string{"a", "b", "c"} {
		j := dsr.NewJob(r.ID, c, dsr.ActionErase, f.clock.Now())
		j.Identities = r.Identities
		jobs = append(jobs, j)
	}
	if err := f.store.CreateJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	finish := func(id string, st dsr.JobStatus) dsr.Status {
		t.Helper()
		if j := f.runJob(t, id, st); len(j.Identities) != 1 || j.Identities[0].Value != "ada@example.com" {
			t.Errorf("claimed job carries %v; want the request's identities", j.Identities)
		}
		to, err := f.store.JobFinished(ctx, r.ID, st == dsr.JobFailed, "t")
		if err != nil {
			t.Fatal(err)
		}
		return to
	}
	// Before the mark: counted, not settled.
	if to := finish(jobs[0].ID, dsr.JobSucceeded); to != "" {
		t.Errorf("a job finished before the fan-out's mark settled the request: %s", to)
	}
	if to, err := f.store.FannedOut(ctx, r.ID, len(jobs), "t"); err != nil || to != "" {
		t.Errorf("FannedOut with two jobs open = %q, %v; want nothing settled", to, err)
	}
	if to := finish(jobs[1].ID, dsr.JobFailed); to != "" {
		t.Errorf("settled with a job open: %s", to)
	}
	if to := finish(jobs[2].ID, dsr.JobSucceeded); to != dsr.StatusNeedsAttention {
		t.Errorf("last job settled the request to %q; want needs_attention (one failed)", to)
	}

	// An agent retries the failed job: it counts as open again, and its
	// success completes the request.
	if _, err := f.store.Transition(ctx, r.ID, dsr.StatusNeedsAttention, dsr.StatusInProgress, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	ids, err := f.store.RetryFailedJobs(ctx, r.ID)
	if err != nil || !cmp.Equal(ids, []string{jobs[1].ID}) {
		t.Fatalf("RetryFailedJobs = %v, %v", ids, err)
	}
	if to := finish(jobs[1].ID, dsr.JobSucceeded); to != dsr.StatusCompleted {
		t.Errorf("the retried job settled the request to %q; want completed", to)
	}
}

// TestJobCountsLost: counts below zero once fanned out (a count lost, or a
// request fanned out before jobs were counted) do not leave a request open:
// the jobs themselves decide.
func testJobCountsLost(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.inProgress(t, dsr.TypeAccess, "ada@example.com")
	j := dsr.NewJob(r.ID, "a", dsr.ActionExport, f.clock.Now())
	if err := f.store.CreateJobs(ctx, []dsr.Job{j}); err != nil {
		t.Fatal(err)
	}
	// Marked the old way: no count.
	if err := f.store.MarkFannedOut(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	f.runJob(t, j.ID, dsr.JobSucceeded)
	if to, err := f.store.JobFinished(ctx, r.ID, false, "t"); err != nil || to != dsr.StatusCompleted {
		t.Errorf("JobFinished with the count lost = %q, %v; want completed (read from the jobs)", to, err)
	}
}

// TestPurgeIdentitiesCoversJobs: the identities a job carries go with the
// request's.
func testPurgeIdentitiesCoversJobs(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.inProgress(t, dsr.TypeAccess, "ada@example.com")
	j := dsr.NewJob(r.ID, "a", dsr.ActionExport, f.clock.Now())
	j.Identities = r.Identities
	if err := f.store.CreateJobs(ctx, []dsr.Job{j}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.FannedOut(ctx, r.ID, 1, "t"); err != nil {
		t.Fatal(err)
	}
	f.runJob(t, j.ID, dsr.JobSucceeded)
	if to, err := f.store.JobFinished(ctx, r.ID, false, "t"); err != nil || to != dsr.StatusCompleted {
		t.Fatalf("JobFinished = %q, %v", to, err)
	}
	if first, err := f.store.PurgeIdentities(ctx, r.ID); err != nil || !first {
		t.Fatalf("PurgeIdentities = %v, %v", first, err)
	}
	got, err := f.store.Job(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Identities) != 0 {
		t.Errorf("the job still carries %v after the request's identities were purged", got.Identities)
	}
}

// TestSettleCorrectsDriftedCounts: counts that drifted high (a worker died
// between a job's end and its count) hold a request open until the sweep
// settles it by reading its jobs; that settle sets the counts to what the
// jobs say, so after an agent's retry the retried job settles the request
// itself.
func testSettleCorrectsDriftedCounts(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.inProgress(t, dsr.TypeDeletion, "ada@example.com")
	j := dsr.NewJob(r.ID, "a", dsr.ActionErase, f.clock.Now())
	if err := f.store.CreateJobs(ctx, []dsr.Job{j}); err != nil {
		t.Fatal(err)
	}
	// Counted as two open jobs: one more than there is.
	if _, err := f.store.FannedOut(ctx, r.ID, 2, "t"); err != nil {
		t.Fatal(err)
	}
	f.runJob(t, j.ID, dsr.JobFailed)
	if to, err := f.store.JobFinished(ctx, r.ID, true, "t"); err != nil || to != "" {
		t.Fatalf("JobFinished with a count too high = %q, %v; want no settle", to, err)
	}
	if to, err := f.store.Settle(ctx, r.ID, "sweep"); err != nil || to != dsr.StatusNeedsAttention {
		t.Fatalf("the sweep's Settle = %q, %v; want needs_attention", to, err)
	}
	if _, err := f.store.Transition(ctx, r.ID, dsr.StatusNeedsAttention, dsr.StatusInProgress, dsr.Change{Actor: "agent", Reason: "retry"}); err != nil {
		t.Fatal(err)
	}
	if ids, err := f.store.RetryFailedJobs(ctx, r.ID); err != nil || len(ids) != 1 {
		t.Fatalf("RetryFailedJobs = %v, %v", ids, err)
	}
	f.runJob(t, j.ID, dsr.JobSucceeded)
	if to, err := f.store.JobFinished(ctx, r.ID, false, "t"); err != nil || to != dsr.StatusCompleted {
		t.Errorf("the retried job's JobFinished = %q, %v; want completed (counts corrected by the sweep's settle)", to, err)
	}
}
