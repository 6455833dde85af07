package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// TestFinishJobOutcomes: each kind of outcome leaves the job as MongoDB's
// update does, and the attempt number fences it.
func TestFinishJobOutcomes(t *testing.T) {
	poll := time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC)
	until := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		action  dsr.Action
		before  func(f fixture, j *dsr.Job) // earlier attempts
		outcome dsr.Outcome
		check   func(t *testing.T, j *dsr.Job)
	}{
		{
			name: "waiting", action: dsr.ActionExport,
			outcome: dsr.Outcome{Status: dsr.JobWaiting, Handle: "h1", PollAt: poll, WaitUntil: until},
			check: func(t *testing.T, j *dsr.Job) {
				if j.Status != dsr.JobWaiting || j.Handle != "h1" || j.PollAt == nil || !j.PollAt.Equal(poll) ||
					j.WaitUntil == nil || !j.WaitUntil.Equal(until) || j.Waits != 1 || j.Recorded != 1 || j.LeaseUntil != nil || j.FinishedAt != nil {
					t.Errorf("waiting job: %+v", j)
				}
			},
		},
		{
			name: "deferred", action: dsr.ActionExport,
			outcome: dsr.Outcome{Status: dsr.JobPending, Deferred: true, Error: "rate limited"},
			check: func(t *testing.T, j *dsr.Job) {
				if j.Status != dsr.JobPending || j.Waits != 1 || j.Recorded != 1 || j.Error != "rate limited" || j.LeaseUntil != nil {
					t.Errorf("deferred job: %+v", j)
				}
			},
		},
		{
			name: "failed attempt keeps its handle", action: dsr.ActionExport,
			before: func(f fixture, j *dsr.Job) {
				c, _ := f.store.ClaimJob(context.Background(), j.ID, time.Minute)
				_ = f.store.FinishJob(context.Background(), c, dsr.Outcome{Status: dsr.JobWaiting, Handle: "h2", PollAt: f.clock.Now(), WaitUntil: until})
			},
			outcome: dsr.Outcome{Status: dsr.JobPending, Error: "poll failed"},
			check: func(t *testing.T, j *dsr.Job) {
				if j.Status != dsr.JobPending || j.Handle != "h2" || j.PollAt != nil || j.Waits != 1 || j.Recorded != 2 || j.Attempts != 2 {
					t.Errorf("retried job: %+v", j)
				}
			},
		},
		{
			name: "erase after a lost attempt", action: dsr.ActionErase,
			before: func(f fixture, j *dsr.Job) {
				_, _ = f.store.ClaimJob(context.Background(), j.ID, time.Minute)
				f.clock.Add(2 * time.Minute) // killed: never recorded
			},
			outcome: dsr.Outcome{Status: dsr.JobSucceeded, Records: 2},
			check: func(t *testing.T, j *dsr.Job) {
				if j.Status != dsr.JobSucceeded || !j.RecordsIncomplete || j.Records != 2 || j.Attempts != 2 || j.Recorded != 1 || j.FinishedAt == nil {
					t.Errorf("erase after a lost attempt: %+v", j)
				}
			},
		},
		{
			name: "export after a lost attempt", action: dsr.ActionExport,
			before: func(f fixture, j *dsr.Job) {
				_, _ = f.store.ClaimJob(context.Background(), j.ID, time.Minute)
				f.clock.Add(2 * time.Minute)
			},
			outcome: dsr.Outcome{Status: dsr.JobSucceeded, Records: 2},
			check: func(t *testing.T, j *dsr.Job) {
				if j.RecordsIncomplete {
					t.Errorf("an export changes nothing, yet its records are marked incomplete: %+v", j)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "")
			ctx := context.Background()
			r := f.inProgress(t, dsr.TypeAccess, "ada@example.com")
			j := f.jobsFor(t, r, tt.action, "shop")[0]
			if tt.before != nil {
				tt.before(f, &j)
			}
			claimed, err := f.store.ClaimJob(ctx, j.ID, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			stale := *claimed
			stale.Attempts--
			if err := f.store.FinishJob(ctx, &stale, tt.outcome); !errors.Is(err, dsr.ErrConflict) {
				t.Errorf("finishing with an earlier attempt's number: %v, want ErrConflict", err)
			}
			if err := f.store.FinishJob(ctx, claimed, tt.outcome); err != nil {
				t.Fatal(err)
			}
			got, err := f.store.Job(ctx, j.ID)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}

// TestClaimWaitingJob: a waiting job is claimed once its poll time has
// come, not before.
func TestClaimWaitingJob(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	r := f.inProgress(t, dsr.TypeAccess, "ada@example.com")
	j := f.jobsFor(t, r, dsr.ActionExport, "shop")[0]
	c, err := f.store.ClaimJob(ctx, j.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	poll := f.clock.Now().Add(time.Hour)
	if err := f.store.FinishJob(ctx, c, dsr.Outcome{Status: dsr.JobWaiting, Handle: "h", PollAt: poll, WaitUntil: poll.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.ClaimJob(ctx, j.ID, time.Minute); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("claiming before the poll time: %v, want ErrConflict", err)
	}
	f.clock.Add(time.Hour)
	if got, err := f.store.ClaimJob(ctx, j.ID, time.Minute); err != nil || got.Attempts != 2 || got.Handle != "h" {
		t.Errorf("claiming at the poll time = %+v, %v", got, err)
	}
}

// TestJobFinishedSettles: a request with 3 jobs settles through
// JobFinished when its last job finishes, completed (its notice made
// pending) or needs_attention, whatever the order of the fan-out's mark
// and the jobs; its audit chain records the move.
func TestJobFinishedSettles(t *testing.T) {
	tests := []struct {
		name    string
		outcome []dsr.JobStatus
		// mark is how many jobs finish before the fan-out's mark.
		mark int
		want dsr.Status
	}{
		{"all succeed", []dsr.JobStatus{dsr.JobSucceeded, dsr.JobSucceeded, dsr.JobSkipped}, 0, dsr.StatusCompleted},
		{"one fails", []dsr.JobStatus{dsr.JobSucceeded, dsr.JobFailed, dsr.JobSucceeded}, 1, dsr.StatusNeedsAttention},
		{"the last fails", []dsr.JobStatus{dsr.JobSucceeded, dsr.JobSucceeded, dsr.JobFailed}, 2, dsr.StatusNeedsAttention},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "")
			ctx := context.Background()
			r := f.inProgress(t, dsr.TypeDeletion, "ada@example.com")
			jobs := f.jobsFor(t, r, dsr.ActionErase, "a", "b", "c")
			for i, j := range jobs {
				if i == tt.mark {
					if to, err := f.store.FannedOut(ctx, r.ID, len(jobs), "fanout"); err != nil || to != "" {
						t.Fatalf("FannedOut with %d jobs open = %q, %v; want nothing settled", len(jobs)-i, to, err)
					}
				}
				claimed := f.runJob(t, j.ID, tt.outcome[i])
				if len(claimed.Identities) != 1 || claimed.Identities[0].Value != "ada@example.com" {
					t.Errorf("claimed job carries %v; want the request's identities", claimed.Identities)
				}
				to, err := f.store.JobFinished(ctx, r.ID, tt.outcome[i] == dsr.JobFailed, "worker")
				if err != nil {
					t.Fatal(err)
				}
				want := dsr.Status("")
				if i == len(jobs)-1 {
					want = tt.want
				}
				if to != want {
					t.Errorf("job %d of %d finished: settled to %q, want %q", i+1, len(jobs), to, want)
				}
			}
			got, err := f.store.Request(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			last := got.History[len(got.History)-1]
			if got.Status != tt.want || last.To != tt.want || last.Actor != "worker" || got.ClosedAt == nil != (tt.want != dsr.StatusCompleted) {
				t.Errorf("settled request: status %s, last move %+v, closed %v", got.Status, last, got.ClosedAt)
			}
			if completed := slices.Contains(got.PendingNotices, dsr.NoticeCompleted); completed != (tt.want == dsr.StatusCompleted) {
				t.Errorf("completion notice pending = %v for %s", completed, tt.want)
			}
			if got.AuditDue || got.Audited != len(got.History) {
				t.Errorf("audit behind the history: due %v, %d of %d", got.AuditDue, got.Audited, len(got.History))
			}
			trail, err := f.store.AuditTrail(ctx, r.ID)
			if err != nil || len(trail) != len(got.History) || !dsr.VerifyChain(trail).OK {
				t.Errorf("audit trail: %d events for %d moves, %v", len(trail), len(got.History), err)
			}
			if c := f.counts(t, r.ID); c.Open != 0 {
				t.Errorf("counts after settling: %+v", c)
			}
			if to, err := f.store.Settle(ctx, r.ID, "sweep"); err != nil || to != "" {
				t.Errorf("the sweep after the settle = %q, %v; want nothing", to, err)
			}
		})
	}
}

// TestRetryCountsJobsOpen: an agent's retry of a failed job counts it as
// open again, its fields reset, and its success completes the request.
func TestRetryCountsJobsOpen(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	r := f.inProgress(t, dsr.TypeDeletion, "ada@example.com")
	jobs := f.jobsFor(t, r, dsr.ActionErase, "a", "b")
	if _, err := f.store.FannedOut(ctx, r.ID, len(jobs), "t"); err != nil {
		t.Fatal(err)
	}
	f.runJob(t, jobs[0].ID, dsr.JobSucceeded)
	if _, err := f.store.JobFinished(ctx, r.ID, false, "t"); err != nil {
		t.Fatal(err)
	}
	f.runJob(t, jobs[1].ID, dsr.JobFailed)
	if to, err := f.store.JobFinished(ctx, r.ID, true, "t"); err != nil || to != dsr.StatusNeedsAttention {
		t.Fatalf("JobFinished = %q, %v", to, err)
	}
	if ids, err := f.store.RetryFailedJobs(ctx, "nobody"); err != nil || ids != nil {
		t.Errorf("retrying no request's jobs = %v, %v", ids, err)
	}
	if _, err := f.store.Transition(ctx, r.ID, dsr.StatusNeedsAttention, dsr.StatusInProgress, dsr.Change{Actor: "agent"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Hour)
	ids, err := f.store.RetryFailedJobs(ctx, r.ID)
	if err != nil || !cmp.Equal(ids, []string{jobs[1].ID}) {
		t.Fatalf("RetryFailedJobs = %v, %v", ids, err)
	}
	if c := f.counts(t, r.ID); c != (dsr.JobCounts{Open: 1}) {
		t.Errorf("counts after the retry = %+v; want 1 open", c)
	}
	j, err := f.store.Job(ctx, jobs[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != dsr.JobPending || j.Attempts != 0 || j.Recorded != 0 || j.FinishedAt != nil || !j.UpdatedAt.Equal(f.clock.Now()) {
		t.Errorf("retried job: %+v", j)
	}
	if ids, err := f.store.RetryFailedJobs(ctx, r.ID); err != nil || len(ids) != 0 {
		t.Errorf("retrying again = %v, %v; want nothing", ids, err)
	}
	f.runJob(t, jobs[1].ID, dsr.JobSucceeded)
	if to, err := f.store.JobFinished(ctx, r.ID, false, "t"); err != nil || to != dsr.StatusCompleted {
		t.Errorf("the retried job settled the request to %q, %v; want completed", to, err)
	}
}

// TestFannedOutAfterTheJobs: jobs that all finished before the fan-out's
// mark settle the request at the mark; a second mark (a raced fan-out)
// settles by the jobs, finding nothing to do.
func TestFannedOutAfterTheJobs(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	r := f.inProgress(t, dsr.TypeAccess, "ada@example.com")
	jobs := f.jobsFor(t, r, dsr.ActionExport, "a", "b")
	for _, j := range jobs {
		f.runJob(t, j.ID, dsr.JobSucceeded)
		if to, err := f.store.JobFinished(ctx, r.ID, false, "t"); err != nil || to != "" {
			t.Fatalf("JobFinished before the mark = %q, %v", to, err)
		}
	}
	if to, err := f.store.FannedOut(ctx, r.ID, len(jobs), "t"); err != nil || to != dsr.StatusCompleted {
		t.Errorf("FannedOut with every job finished = %q, %v; want completed", to, err)
	}
	if to, err := f.store.FannedOut(ctx, r.ID, len(jobs), "t"); err != nil || to != "" {
		t.Errorf("a second FannedOut = %q, %v; want nothing", to, err)
	}
	if _, err := f.store.FannedOut(ctx, "nobody", 1, "t"); !errors.Is(err, dsr.ErrNotFound) {
		t.Errorf("FannedOut of a missing request: %v, want ErrNotFound", err)
	}
	if _, err := f.store.JobFinished(ctx, "nobody", false, "t"); !errors.Is(err, dsr.ErrNotFound) {
		t.Errorf("JobFinished of a missing request: %v, want ErrNotFound", err)
	}

	// A second fan-out that raced the first settles by the jobs.
	r2 := f.inProgress(t, dsr.TypeAccess, "grace@example.com")
	j2 := f.jobsFor(t, r2, dsr.ActionExport, "a")
	if to, err := f.store.FannedOut(ctx, r2.ID, 1, "t"); err != nil || to != "" {
		t.Fatalf("FannedOut = %q, %v", to, err)
	}
	f.runJob(t, j2[0].ID, dsr.JobFailed) // its count is lost: no JobFinished
	if to, err := f.store.FannedOut(ctx, r2.ID, 1, "t"); err != nil || to != dsr.StatusNeedsAttention {
		t.Errorf("the raced FannedOut = %q, %v; want needs_attention, read from the jobs", to, err)
	}
}

// TestEachStaleJobPages: more stale jobs than a page are each seen once,
// while fn writes.
func TestEachStaleJobPages(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	r := f.inProgress(t, dsr.TypeAccess, "ada@example.com")
	var names []string
	for i := range 2*batch + 7 {
		names = append(names, fmt.Sprintf("c%03d", i))
	}
	jobs := f.jobsFor(t, r, dsr.ActionExport, names...)
	f.clock.Add(time.Hour)
	now := f.clock.Now()
	seen := map[string]int{}
	err := f.store.EachStaleJob(ctx, now, now, func(j *dsr.Job) error {
		seen[j.ID]++
		_, err := f.store.ClaimJob(ctx, j.ID, time.Minute) // the sweep's work writes
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(jobs) {
		t.Errorf("saw %d stale jobs, want %d", len(seen), len(jobs))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("job %s seen %d times", id, n)
		}
	}
}

// TestSettleByTheJobsSetsCounts: a settle that reads the jobs (the sweep's,
// or JobFinished's when the counts were lost) stores the counts the jobs
// say, the counts the suite's cases can only see through what settles
// next.
func TestSettleByTheJobsSetsCounts(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()

	// The sweep's settle of a request with a failed job.
	r := f.inProgress(t, dsr.TypeDeletion, "ada@example.com")
	jobs := f.jobsFor(t, r, dsr.ActionErase, "shop", "crm")
	f.runJob(t, jobs[0].ID, dsr.JobSucceeded)
	f.runJob(t, jobs[1].ID, dsr.JobFailed)
	if err := f.store.MarkFannedOut(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if to, err := f.store.Settle(ctx, r.ID, "sweep"); err != nil || to != dsr.StatusNeedsAttention {
		t.Fatalf("Settle = %q, %v; want needs_attention", to, err)
	}
	if c := f.counts(t, r.ID); c != (dsr.JobCounts{Failed: 1}) {
		t.Errorf("counts after the sweep's settle = %+v; want the jobs' (1 failed)", c)
	}

	// JobFinished with the count lost (marked the old way: no count).
	lost := f.inProgress(t, dsr.TypeAccess, "grace@example.com")
	j := f.jobsFor(t, lost, dsr.ActionExport, "a")[0]
	if err := f.store.MarkFannedOut(ctx, lost.ID); err != nil {
		t.Fatal(err)
	}
	f.runJob(t, j.ID, dsr.JobSucceeded)
	if to, err := f.store.JobFinished(ctx, lost.ID, false, "t"); err != nil || to != dsr.StatusCompleted {
		t.Fatalf("JobFinished with the count lost = %q, %v; want completed", to, err)
	}
	if c := f.counts(t, lost.ID); c != (dsr.JobCounts{}) {
		t.Errorf("counts after a settle by the jobs = %+v; want the jobs' (none open or failed)", c)
	}
}
