package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// testHookHold: the pre-fan-out hook's hold is taken once, on a verified
// request only, with the identities the hook added; a resume lifts it
// once; an agent's retry (ResetFanout) forgets it.
func testHookHold(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.newRequest(t, dsr.TypeDeletion, "ada@example.com")
	until := f.clock.Now().Add(time.Hour)
	if _, err := f.store.ResumeHook(ctx, r.ID, "msg_0", nil, nil); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("resume of a request not held: %v; want ErrConflict", err)
	}
	added := append(slices.Clone(r.Identities), dsr.Identity{Kind: dsr.KindCustomerID, Value: "cus_1", Source: dsr.SourceHook})
	held, err := f.store.HoldForHook(ctx, r.ID, until, added, f.index.HashAll(added))
	if err != nil {
		t.Fatal(err)
	}
	if !held.HookHold.Holding() || !held.HookHold.Until.Equal(until) || len(held.Identities) != 2 || len(held.IdentityHashes) != 2 {
		t.Errorf("held: %+v, identities %v, hashes %v", held.HookHold, held.Identities, held.IdentityHashes)
	}
	if _, err := f.store.HoldForHook(ctx, r.ID, until, nil, nil); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("second hold: %v; want ErrConflict", err)
	}
	f.clock.Add(time.Minute)
	more := append(slices.Clone(added), dsr.Identity{Kind: dsr.KindPhone, Value: "+4915112345678", Source: dsr.SourceHook})
	resumed, err := f.store.ResumeHook(ctx, r.ID, "msg_1", more, f.index.HashAll(more))
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*dsr.Request{resumed, got} {
		if g.HookHold.Holding() || g.HookHold.ResumeID != "msg_1" || len(g.Identities) != 3 || len(g.IdentityHashes) != 3 ||
			!g.UpdatedAt.Equal(f.clock.Now()) {
			t.Errorf("resumed: %+v, identities %v, updated %s", g.HookHold, g.Identities, g.UpdatedAt)
		}
	}
	if _, err := f.store.ResumeHook(ctx, r.ID, "msg_2", nil, nil); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("second resume: %v; want ErrConflict", err)
	}
	// Not verified: neither a hold nor a resume.
	if _, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusNeedsAttention, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.HoldForHook(ctx, r.ID, until, nil, nil); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("hold of a request needing attention: %v; want ErrConflict", err)
	}
	retried, err := f.store.Transition(ctx, r.ID, dsr.StatusNeedsAttention, dsr.StatusVerified, dsr.Change{Actor: "t", ResetFanout: true})
	if err != nil {
		t.Fatal(err)
	}
	if retried.HookHold != nil {
		t.Errorf("an agent's retry kept the hold %+v", retried.HookHold)
	}
	if _, err := f.store.HoldForHook(ctx, r.ID, until, nil, nil); err != nil {
		t.Errorf("hold after an agent's retry: %v", err)
	}
}

// testOutcomeHook: a request the fan-out marked OutcomeHook owes the
// post-processing hook its outcome each time it reaches completed or
// needs_attention, by a transition or by settling; one not marked owes
// nothing.
func testOutcomeHook(t *testing.T, f fixture) {
	ctx := context.Background()
	pending := func(id string) bool {
		t.Helper()
		r, err := f.store.Request(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(r.PendingNotices, dsr.NoticeHookOutcome)
	}
	settleOne := func(hook bool, st dsr.JobStatus) string {
		t.Helper()
		r := f.newRequest(t, dsr.TypeDeletion, "ada@example.com")
		moved, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "t", OutcomeHook: hook})
		if err != nil {
			t.Fatal(err)
		}
		if moved.OutcomeHook != hook || pending(r.ID) {
			t.Errorf("in progress: OutcomeHook %v (want %v), outcome pending %v", moved.OutcomeHook, hook, pending(r.ID))
		}
		j := dsr.NewJob(r.ID, "a", dsr.ActionErase, f.clock.Now())
		if err := f.store.CreateJobs(ctx, []dsr.Job{j}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.FannedOut(ctx, r.ID, 1, "t"); err != nil {
			t.Fatal(err)
		}
		f.runJob(t, j.ID, st)
		if to, err := f.store.JobFinished(ctx, r.ID, st == dsr.JobFailed, "t"); err != nil || to == "" {
			t.Fatalf("JobFinished = %q, %v", to, err)
		}
		return r.ID
	}
	for _, tt := range []struct {
		hook bool
		st   dsr.JobStatus
	}{{true, dsr.JobSucceeded}, {true, dsr.JobFailed}, {false, dsr.JobSucceeded}, {false, dsr.JobFailed}} {
		if id := settleOne(tt.hook, tt.st); pending(id) != tt.hook {
			t.Errorf("settled by a job that %s, OutcomeHook %v: outcome pending %v", tt.st, tt.hook, !tt.hook)
		}
	}
	// The sweep's Settle, which reads the jobs, owes it likewise.
	r := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	if _, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "t", OutcomeHook: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.MarkFannedOut(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if to, err := f.store.Settle(ctx, r.ID, "sweep"); err != nil || to != dsr.StatusCompleted {
		t.Fatalf("Settle with no job = %q, %v", to, err)
	}
	if !pending(r.ID) {
		t.Error("Settle did not make the outcome pending")
	}
	// A transition that carries the flag (a fan-out that failed), and one
	// that does not.
	for _, hook := range []bool{true, false} {
		r := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
		if _, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusNeedsAttention, dsr.Change{Actor: "t", OutcomeHook: hook}); err != nil {
			t.Fatal(err)
		}
		if pending(r.ID) != hook {
			t.Errorf("needs attention with OutcomeHook %v: outcome pending %v", hook, !hook)
		}
	}
}
