package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// waitingJob stores a job of an in-progress request and runs it to waiting
// on handle, as a worker does when the system accepts the work and
// finishes it later.
func (f fixture) waitingJob(t *testing.T, handle string) *dsr.Job {
	t.Helper()
	ctx := context.Background()
	r := f.inProgress(t, dsr.TypeAccess, "ada@example.com")
	j := dsr.NewJob(r.ID, "hook", dsr.ActionExport, f.clock.Now())
	if err := f.store.CreateJobs(ctx, []dsr.Job{j}); err != nil {
		t.Fatal(err)
	}
	claimed, err := f.store.ClaimJob(ctx, j.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	if err := f.store.FinishJob(ctx, claimed, dsr.Outcome{Status: dsr.JobWaiting, Handle: handle,
		PollAt: now.Add(time.Hour), WaitUntil: now.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return claimed
}

// mustJob reads job id.
func (f fixture) mustJob(t *testing.T, id string) *dsr.Job {
	t.Helper()
	j, err := f.store.Job(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// testAnswerJob: an outside party's answer reaches a job only while it
// waits on exactly the handle the answer names and holds no answer yet;
// every refused answer changes nothing. A stored answer makes the job due
// at once, stays through a failed attempt (the retry takes it up again),
// and goes when the job waits again, ends, or an agent retries it.
func testAnswerJob(t *testing.T, f fixture) {
	ctx := context.Background()
	j := f.waitingJob(t, "op-1")
	before := f.mustJob(t, j.ID)

	refused := []struct {
		name   string
		id     string
		handle string
		answer []byte
		want   error
	}{
		{"unknown job", "no-such-job", "op-1", []byte(`{}`), dsr.ErrNotFound},
		{"wrong handle", j.ID, "op-2", []byte(`{}`), dsr.ErrJobNotWaiting},
		{"empty handle", j.ID, "", []byte(`{}`), dsr.ErrJobNotWaiting},
		{"empty answer", j.ID, "op-1", nil, dsr.ErrAnswerSize},
		{"answer too large", j.ID, "op-1", make([]byte, dsr.MaxStoredAnswer+1), dsr.ErrAnswerSize},
	}
	for _, tc := range refused {
		if err := f.store.AnswerJob(ctx, tc.id, tc.handle, tc.answer); !errors.Is(err, tc.want) {
			t.Errorf("%s: AnswerJob = %v; want %v", tc.name, err, tc.want)
		}
	}
	if got := f.mustJob(t, j.ID); len(got.Answer) != 0 || got.AnsweredAt != nil || !got.PollAt.Equal(*before.PollAt) {
		t.Errorf("refused answers changed the job: answer %q, answered at %v, poll at %v (was %v)", got.Answer, got.AnsweredAt, got.PollAt, before.PollAt)
	}

	f.clock.Add(time.Minute)
	answer := []byte(`{"records":{"orders":2}}`)
	if err := f.store.AnswerJob(ctx, j.ID, "op-1", answer); err != nil {
		t.Fatalf("AnswerJob on the waiting job: %v", err)
	}
	got := f.mustJob(t, j.ID)
	now := f.clock.Now()
	if !bytes.Equal(got.Answer, answer) || got.AnsweredAt == nil || !got.AnsweredAt.Equal(now) || got.Status != dsr.JobWaiting {
		t.Errorf("after AnswerJob: answer %q at %v, status %s; want %q at %v, waiting", got.Answer, got.AnsweredAt, got.Status, answer, now)
	}
	if got.PollAt == nil || got.PollAt.After(now) {
		t.Errorf("after AnswerJob the job polls at %v; want due now (%v)", got.PollAt, now)
	}
	if err := f.store.AnswerJob(ctx, j.ID, "op-1", []byte(`{"second":true}`)); !errors.Is(err, dsr.ErrAlreadyAnswered) || !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("a second answer: %v; want ErrAlreadyAnswered (a conflict)", err)
	}
	if got := f.mustJob(t, j.ID); !bytes.Equal(got.Answer, answer) {
		t.Errorf("a refused second answer replaced the first: %q", got.Answer)
	}
	var due []string
	if err := f.store.EachStaleJob(ctx, now.Add(-time.Hour), now, func(j *dsr.Job) error {
		due = append(due, j.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0] != j.ID {
		t.Errorf("the sweep hands on %v; want the answered job (due now)", due)
	}

	// Claimed at once; while it runs, nothing answers it.
	run, err := f.store.ClaimJob(ctx, j.ID, time.Minute)
	if err != nil {
		t.Fatalf("claim of the answered job: %v", err)
	}
	if !bytes.Equal(run.Answer, answer) || run.Handle != "op-1" {
		t.Errorf("the claimed job carries answer %q for handle %q; want %q for op-1", run.Answer, run.Handle, answer)
	}
	if err := f.store.AnswerJob(ctx, j.ID, "op-1", answer); !errors.Is(err, dsr.ErrJobNotWaiting) {
		t.Errorf("answer to a running job: %v; want ErrJobNotWaiting", err)
	}
	// A failed attempt keeps the answer for the retry.
	if err := f.store.FinishJob(ctx, run, dsr.Outcome{Status: dsr.JobPending, Error: "store busy"}); err != nil {
		t.Fatal(err)
	}
	if got := f.mustJob(t, j.ID); !bytes.Equal(got.Answer, answer) || got.Handle != "op-1" {
		t.Errorf("after a failed attempt: answer %q, handle %q; want both kept for the retry", got.Answer, got.Handle)
	}
	if err := f.store.AnswerJob(ctx, j.ID, "op-1", answer); !errors.Is(err, dsr.ErrJobNotWaiting) {
		t.Errorf("answer to a job pending a retry: %v; want ErrJobNotWaiting", err)
	}
	// The retry waits again (the answer said "later"): the answer is
	// taken up, and a new one may come for the new handle.
	run, err = f.store.ClaimJob(ctx, j.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now = f.clock.Now()
	if err := f.store.FinishJob(ctx, run, dsr.Outcome{Status: dsr.JobWaiting, Handle: "op-2", PollAt: now.Add(time.Hour), WaitUntil: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got := f.mustJob(t, j.ID); len(got.Answer) != 0 || got.AnsweredAt != nil {
		t.Errorf("after waiting again the job still holds answer %q (at %v)", got.Answer, got.AnsweredAt)
	}
	if err := f.store.AnswerJob(ctx, j.ID, "op-1", answer); !errors.Is(err, dsr.ErrJobNotWaiting) {
		t.Errorf("answer for the old handle: %v; want ErrJobNotWaiting", err)
	}
	if err := f.store.AnswerJob(ctx, j.ID, "op-2", answer); err != nil {
		t.Fatalf("answer for the new handle: %v", err)
	}
	// The job ends: the answer goes, and no answer reaches it any more.
	run, err = f.store.ClaimJob(ctx, j.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.FinishJob(ctx, run, dsr.Outcome{Status: dsr.JobFailed, Error: "the answer was not valid"}); err != nil {
		t.Fatal(err)
	}
	if got := f.mustJob(t, j.ID); len(got.Answer) != 0 || got.AnsweredAt != nil {
		t.Errorf("the failed job still holds answer %q", got.Answer)
	}
	if err := f.store.AnswerJob(ctx, j.ID, "op-2", answer); !errors.Is(err, dsr.ErrJobNotWaiting) {
		t.Errorf("answer to a finished job: %v; want ErrJobNotWaiting", err)
	}

	// A job that never waited takes no answer.
	r := f.inProgress(t, dsr.TypeDeletion, "bob@example.com")
	p := dsr.NewJob(r.ID, "hook", dsr.ActionErase, f.clock.Now())
	if err := f.store.CreateJobs(ctx, []dsr.Job{p}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.AnswerJob(ctx, p.ID, "", answer); !errors.Is(err, dsr.ErrJobNotWaiting) {
		t.Errorf("answer to a pending job with no handle: %v; want ErrJobNotWaiting", err)
	}
}

// testAnswerJobRetried: an agent's retry of a failed job forgets the work
// it waited on, its answer included.
func testAnswerJobRetried(t *testing.T, f fixture) {
	ctx := context.Background()
	j := f.waitingJob(t, "op-1")
	if err := f.store.AnswerJob(ctx, j.ID, "op-1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	run, err := f.store.ClaimJob(ctx, j.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Failed for good, as a worker records it, but kept by a store that
	// did not clear it: the agent's retry must forget it anyway.
	if err := f.store.FinishJob(ctx, run, dsr.Outcome{Status: dsr.JobFailed}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.JobFinished(ctx, j.RequestID, true, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Transition(ctx, j.RequestID, dsr.StatusInProgress, dsr.StatusNeedsAttention, dsr.Change{Actor: "t", Reason: "failed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Transition(ctx, j.RequestID, dsr.StatusNeedsAttention, dsr.StatusInProgress, dsr.Change{Actor: "agent", Reason: "retry"}); err != nil {
		t.Fatal(err)
	}
	if ids, err := f.store.RetryFailedJobs(ctx, j.RequestID); err != nil || len(ids) != 1 {
		t.Fatalf("RetryFailedJobs = %v, %v", ids, err)
	}
	if got := f.mustJob(t, j.ID); len(got.Answer) != 0 || got.AnsweredAt != nil || got.Handle != "" || got.Retries != 1 {
		t.Errorf("the retried job holds answer %q, handle %q, %d retries; want neither, and 1 (the action starts again, named anew)", got.Answer, got.Handle, got.Retries)
	}
}

// testConcurrentAnswers races 16 answers, each different, for one waiting
// job: exactly one is stored, the others get dsr.ErrAlreadyAnswered.
func testConcurrentAnswers(t *testing.T, f fixture) {
	ctx := context.Background()
	j := f.waitingJob(t, "op-1")
	const senders = 16
	var wg sync.WaitGroup
	startLine := make(chan struct{})
	errs := make([]error, senders)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startLine
			errs[i] = f.store.AnswerJob(ctx, j.ID, "op-1", fmt.Appendf(nil, `{"sender":%d}`, i))
		}()
	}
	close(startLine)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("answers %d and %d were both stored", winner, i)
			}
			winner = i
		case !errors.Is(err, dsr.ErrAlreadyAnswered):
			t.Errorf("answer %d: %v; want ErrAlreadyAnswered", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no answer was stored")
	}
	if got, want := f.mustJob(t, j.ID).Answer, fmt.Appendf(nil, `{"sender":%d}`, winner); !bytes.Equal(got, want) {
		t.Errorf("stored answer %q; want the winner's %q", got, want)
	}
}

// testPurgeIdentitiesCoversAnswers: an answer a finished job still holds
// (one written before answers were cleared at a job's end) goes with the
// request's identities.
func testPurgeIdentitiesCoversAnswers(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.inProgress(t, dsr.TypeAccess, "ada@example.com")
	j := dsr.NewJob(r.ID, "hook", dsr.ActionExport, f.clock.Now())
	at := f.clock.Now()
	j.Status, j.FinishedAt, j.Handle, j.Answer, j.AnsweredAt = dsr.JobSucceeded, &at, "op-1", []byte(`{"email":"ada@example.com"}`), &at
	if err := f.store.CreateJobs(ctx, []dsr.Job{j}); err != nil {
		t.Fatal(err)
	}
	if got := f.mustJob(t, j.ID); len(got.Answer) == 0 {
		t.Fatal("the job was stored without its answer")
	}
	if _, err := f.store.FannedOut(ctx, r.ID, 0, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Settle(ctx, r.ID, "t"); err != nil {
		t.Fatal(err)
	}
	if first, err := f.store.PurgeIdentities(ctx, r.ID); err != nil || !first {
		t.Fatalf("PurgeIdentities = %v, %v", first, err)
	}
	if got := f.mustJob(t, j.ID); len(got.Answer) != 0 || got.AnsweredAt != nil {
		t.Errorf("the finished job still holds answer %q after the purge", got.Answer)
	}
}

// testFailuresSinceWait: a job's failures count from when it last began
// to wait (the system answered then), a killed attempt included; an
// agent's retry starts them afresh.
func testFailuresSinceWait(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.inProgress(t, dsr.TypeDeletion, "ada@example.com")
	j := dsr.NewJob(r.ID, "remote", dsr.ActionErase, f.clock.Now())
	if err := f.store.CreateJobs(ctx, []dsr.Job{j}); err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	step := func(o dsr.Outcome) {
		t.Helper()
		claimed, err := f.store.ClaimJob(ctx, j.ID, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if o.Status == "" {
			return // killed before it recorded anything
		}
		if err := f.store.FinishJob(ctx, claimed, o); err != nil {
			t.Fatal(err)
		}
	}
	failed := dsr.Outcome{Status: dsr.JobPending, Error: "503"}
	waiting := dsr.Outcome{Status: dsr.JobWaiting, Handle: "op-1", PollAt: now, WaitUntil: now.Add(24 * time.Hour)}
	step(failed)
	step(failed)
	if n := f.mustJob(t, j.ID).Failures(); n != 2 {
		t.Fatalf("two failures: Failures() = %d", n)
	}
	step(waiting)
	if n := f.mustJob(t, j.ID).Failures(); n != 0 {
		t.Fatalf("after the wait: Failures() = %d; want 0", n)
	}
	step(failed)
	step(dsr.Outcome{Status: dsr.JobPending, Error: "429", Deferred: true})
	if n := f.mustJob(t, j.ID).Failures(); n != 1 {
		t.Fatalf("a failure and a deferral since the wait: Failures() = %d; want 1", n)
	}
	f.clock.Add(2 * time.Minute) // the lease of the attempt killed below ends
	step(dsr.Outcome{})
	if n := f.mustJob(t, j.ID).Failures(); n != 2 {
		t.Fatalf("then an attempt killed: Failures() = %d; want 2", n)
	}
}
