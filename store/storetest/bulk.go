package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// TestCreateRequests files a batch in which one request is refused (its id
// is taken) and another duplicates it: both fail and neither is left
// stored, nor the orphan's audit event, while the rest are stored with their
// audit chains started; the existing request's chain is untouched.
func testCreateRequests(t *testing.T, f fixture) {
	ctx := context.Background()
	existing := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	taken := f.requestValue(t, dsr.TypeAccess, "grace@example.com")
	taken.ID = existing.ID
	orphan := f.requestValue(t, dsr.TypeAccess, "grace@example.com")
	orphan.DuplicateOf, orphan.Status = taken.ID, dsr.StatusDuplicate
	fine := []*dsr.Request{f.requestValue(t, dsr.TypeAccess, "alan@example.com"), f.requestValue(t, dsr.TypeDeletion, "alan@example.com")}
	errs := f.store.CreateRequests(ctx, []*dsr.Request{fine[0], taken, orphan, fine[1]})
	if len(errs) != 4 || !errors.Is(errs[1], dsr.ErrConflict) || errs[2] == nil || errs[0] != nil || errs[3] != nil {
		t.Fatalf("errors: %v", errs)
	}
	if _, err := f.store.Request(ctx, orphan.ID); !errors.Is(err, dsr.ErrNotFound) {
		t.Errorf("the orphan: %v, want not found", err)
	}
	if r, err := f.store.Request(ctx, existing.ID); err != nil || r.IdentityHashes[0] != existing.IdentityHashes[0] {
		t.Errorf("the existing request was changed: %v", err)
	}
	if trail := f.trail(t, existing.ID); len(trail) != 1 || !dsr.VerifyChain(trail).OK || trail[0].Actor != "tester" {
		t.Errorf("the existing request's chain: %+v", trail)
	}
	if trail := f.trail(t, orphan.ID); len(trail) != 0 {
		t.Errorf("the orphan's events are left: %+v", trail)
	}
	for _, r := range fine {
		got, err := f.store.Request(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		trail := f.trail(t, r.ID)
		if got.AuditDue || got.Audited != 1 || !dsr.VerifyChain(trail).OK || len(trail) != 1 || trail[0].Kind != "filed" {
			t.Errorf("%s: audit due %v, audited %d, chain %+v", r.ID, got.AuditDue, got.Audited, trail)
		}
		// The next event goes after the head the batch wrote.
		if _, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "t"}); err != nil {
			t.Fatal(err)
		}
		if c := dsr.VerifyChain(f.trail(t, r.ID)); !c.OK || c.Events != 2 {
			t.Errorf("%s after a transition: %+v", r.ID, c)
		}
	}
}

// TestCreateRequestsLeavesLongerHistoriesDue: a request filed with more
// history than its first event (held for approval at intake) stays marked
// audit_due, so the sweep catches its chain up if its filer does not; a
// driver that audits in the change's transaction has its whole chain
// written at once, and nothing is left due.
func testCreateRequestsLeavesLongerHistoriesDue(t *testing.T, f fixture) {
	ctx := context.Background()
	held := f.requestValue(t, dsr.TypeDeletion, "ada@example.com")
	held.Status = dsr.StatusAwaitingApproval
	held.History = append(held.History, dsr.Transition{From: dsr.StatusVerified, To: dsr.StatusAwaitingApproval, At: held.ReceivedAt, Actor: "policy", Reason: "waiting for an agent's approval"})
	if errs := f.store.CreateRequests(ctx, []*dsr.Request{held}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	got, err := f.store.Request(ctx, held.ID)
	if err != nil {
		t.Fatal(err)
	}
	if f.auditsInTx {
		if got.AuditDue || got.Audited != 2 {
			t.Fatalf("audit due %v, audited %d; want the whole history audited at once", got.AuditDue, got.Audited)
		}
	} else if !got.AuditDue || got.Audited != 1 {
		t.Fatalf("audit due %v, audited %d; want due after the first event", got.AuditDue, got.Audited)
	}
	var due []string
	if err := f.store.EachAuditDue(ctx, f.clock.Now().Add(time.Hour), func(r *dsr.Request) error {
		due = append(due, r.ID)
		return f.store.CatchUpAudit(ctx, r)
	}); err != nil {
		t.Fatal(err)
	}
	if found := slices.Contains(due, held.ID); found == f.auditsInTx {
		t.Fatalf("the sweep's scan of requests due %v: holds the request %v, want %v", due, found, !f.auditsInTx)
	}
	if c := dsr.VerifyChain(f.trail(t, held.ID)); !c.OK || c.Events != 2 {
		t.Errorf("chain after the catch-up: %+v", c)
	}
}
