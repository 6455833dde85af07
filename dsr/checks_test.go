package dsr_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// fileUnder stores a verified request of typ under reg for email.
func (f fixture) fileUnder(t *testing.T, reg dsr.Regulation, typ dsr.Type, email string) *dsr.Request {
	t.Helper()
	r, err := dsr.NewRequest(dsr.Intake{
		Type: typ, Regulation: reg, Source: "test", FiledBy: "tester", Status: dsr.StatusVerified,
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: email, Source: dsr.SourceSubject}},
		ReceivedAt: f.clock.Now(),
	}, f.index)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateRequest(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func (f fixture) openDueBefore(t *testing.T, at time.Time) []string {
	t.Helper()
	var ids []string
	if err := f.store.EachOpenDueBefore(context.Background(), at, func(r *dsr.Request) error {
		ids = append(ids, r.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

func TestEachOpenDueBefore(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	gdpr := f.newRequest(t, dsr.TypeAccess, "ada@example.com")                        // due in a month
	optout := f.fileUnder(t, dsr.RegulationCCPA, dsr.TypeOptOut, "grace@example.com") // due in 15 business days
	closed := f.fileUnder(t, dsr.RegulationCCPA, dsr.TypeOptOut, "alan@example.com")  // closed: never due
	if _, err := f.store.Transition(ctx, closed.ID, dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	if got := f.openDueBefore(t, f.clock.Now().AddDate(0, 0, 7)); len(got) != 0 {
		t.Errorf("due within a week: %v, want none", got)
	}
	if got := f.openDueBefore(t, f.clock.Now().AddDate(0, 0, 22)); !slices.Equal(got, []string{optout.ID}) {
		t.Errorf("due within 22 days: %v, want the opt-out %s", got, optout.ID)
	}
	want := []string{gdpr.ID, optout.ID}
	slices.Sort(want)
	if got := f.openDueBefore(t, f.clock.Now().AddDate(0, 2, 0)); !slices.Equal(got, want) {
		t.Errorf("due within two months: %v, want %v", got, want)
	}
}

func TestRemindAndEscalateOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	r := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	steps := []struct {
		name string
		do   func() (bool, error)
		want bool
	}{
		{"remind 7", func() (bool, error) { return f.store.Remind(ctx, r.ID, 7) }, true},
		{"remind 7 again", func() (bool, error) { return f.store.Remind(ctx, r.ID, 7) }, false},
		{"remind 2", func() (bool, error) { return f.store.Remind(ctx, r.ID, 2) }, true},
		{"escalate", func() (bool, error) { return f.store.Escalate(ctx, r.ID) }, true},
		{"escalate again", func() (bool, error) { return f.store.Escalate(ctx, r.ID) }, false},
	}
	for _, s := range steps {
		got, err := s.do()
		if err != nil || got != s.want {
			t.Errorf("%s: %v, %v; want %v", s.name, got, err, s.want)
		}
	}
	got, err := f.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Reminded, []int{7, 2}) || got.OverdueAt == nil || !got.OverdueAt.Equal(f.clock.Now()) {
		t.Errorf("reminded %v, overdue at %v", got.Reminded, got.OverdueAt)
	}
	want := []string{dsr.AlertReminder(7), dsr.AlertReminder(2), dsr.AlertOverdue}
	if !slices.Equal(got.PendingNotices, want) {
		t.Errorf("pending notices %v, want %v", got.PendingNotices, want)
	}
	for _, n := range want {
		if !dsr.IsAlert(n) {
			t.Errorf("IsAlert(%q) = false", n)
		}
	}
	if dsr.IsAlert(dsr.NoticeExtended) {
		t.Errorf("IsAlert(%q) = true: a notice to the person is not an alert", dsr.NoticeExtended)
	}
}

func TestRetentionPurges(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	open := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	done := f.newRequest(t, dsr.TypeAccess, "grace@example.com")
	if _, err := f.store.Transition(ctx, done.ID, dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	closedAt := f.clock.Now()
	f.clock.Add(time.Hour)
	var closed []string
	collect := func(r *dsr.Request) error { closed = append(closed, r.ID); return nil }
	if err := f.store.EachClosedBefore(ctx, closedAt, collect); err != nil || len(closed) != 0 {
		t.Errorf("closed before its closing: %v, %v", closed, err)
	}
	if err := f.store.EachClosedBefore(ctx, f.clock.Now(), collect); err != nil || !slices.Equal(closed, []string{done.ID}) {
		t.Errorf("closed before now: %v, %v; want %s", closed, err, done.ID)
	}

	if ok, err := f.store.PurgeIdentities(ctx, open.ID); err != nil || ok {
		t.Errorf("purge an open request's identities: %v, %v; want refused", ok, err)
	}
	for i, want := range []bool{true, false} {
		if ok, err := f.store.PurgeIdentities(ctx, done.ID); err != nil || ok != want {
			t.Errorf("purge identities #%d: %v, %v; want %v", i+1, ok, err, want)
		}
		if ok, err := f.store.PurgeExports(ctx, done.ID); err != nil || ok != want {
			t.Errorf("purge exports #%d: %v, %v; want %v", i+1, ok, err, want)
		}
	}
	got, err := f.store.Request(ctx, done.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Identities) != 0 || got.PurgedAt == nil || got.ExportsPurgedAt == nil || len(got.IdentityHashes) == 0 || len(got.History) == 0 {
		t.Errorf("after purge: identities %v, purged %v, exports purged %v, hashes %d, history %d; want identities gone, evidence kept",
			got.Identities, got.PurgedAt, got.ExportsPurgedAt, len(got.IdentityHashes), len(got.History))
	}
}

func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	r := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	p, err := f.store.PauseClock(ctx, r.ID, "agent@shop", "asked for a utility bill")
	if err != nil || p.PausedAt == nil || len(p.Pauses) != 1 {
		t.Fatalf("pause: %+v, %v", p, err)
	}
	if _, err := f.store.PauseClock(ctx, r.ID, "agent@shop", "again"); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("pause a paused clock: %v, want ErrConflict", err)
	}
	f.clock.Add(72 * time.Hour)
	got, err := f.store.ResumeClock(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := r.DueAt.Add(72 * time.Hour); !got.DueAt.Equal(want) || got.PausedAt != nil || got.Pauses[0].ResumedAt == nil {
		t.Errorf("resumed: due %s (want %s), paused %v, pauses %+v", got.DueAt, want, got.PausedAt, got.Pauses)
	}
	if _, err := f.store.ResumeClock(ctx, r.ID); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("resume a running clock: %v, want ErrConflict", err)
	}

	ccpa := f.fileUnder(t, dsr.RegulationCCPA, dsr.TypeAccess, "grace@example.com")
	if _, err := f.store.PauseClock(ctx, ccpa.ID, "agent@shop", "waiting"); !errors.Is(err, dsr.ErrNotPausable) {
		t.Errorf("pause a CCPA clock: %v, want ErrNotPausable (45 days run whatever verification takes)", err)
	}
	if _, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.PauseClock(ctx, r.ID, "agent@shop", "too late"); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("pause a closed request: %v, want ErrConflict", err)
	}
}

func TestAppeal(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	deny := func(r *dsr.Request) {
		t.Helper()
		if _, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusDenied, dsr.Change{Actor: "t", Reason: "not verified"}); err != nil {
			t.Fatal(err)
		}
	}
	va := f.fileUnder(t, dsr.RegulationVCDPA, dsr.TypeDeletion, "ada@example.com")
	if _, err := f.store.Appeal(ctx, va.ID, "agent@shop", "early"); !errors.Is(err, dsr.ErrNotAppealable) {
		t.Errorf("appeal an open request: %v, want ErrNotAppealable", err)
	}
	deny(va)
	f.clock.Add(24 * time.Hour)
	a, err := f.store.Appeal(ctx, va.ID, "agent@shop", "the person sent proof")
	if err != nil {
		t.Fatal(err)
	}
	if a.AppealOf != va.ID || a.Status != dsr.StatusAwaitingApproval || a.Type != va.Type ||
		!a.DueAt.Equal(f.clock.Now().AddDate(0, 0, 60)) || !slices.Equal(a.IdentityHashes, va.IdentityHashes) {
		t.Errorf("appeal: %+v", a)
	}
	if got, err := f.store.Request(ctx, va.ID); err != nil || got.AppealedBy != a.ID {
		t.Errorf("denied request links to its appeal: %q, %v; want %s", got.AppealedBy, err, a.ID)
	}
	if _, err := f.store.Appeal(ctx, va.ID, "agent@shop", "twice"); !errors.Is(err, dsr.ErrNotAppealable) {
		t.Errorf("second appeal: %v, want ErrNotAppealable", err)
	}
	gdpr := f.newRequest(t, dsr.TypeAccess, "grace@example.com")
	deny(gdpr)
	if _, err := f.store.Appeal(ctx, gdpr.ID, "agent@shop", "no such right"); !errors.Is(err, dsr.ErrNotAppealable) {
		t.Errorf("appeal under GDPR: %v, want ErrNotAppealable", err)
	}
}

func TestExtendPastDueIsRefused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	f.clock.Add(r.DueAt.Sub(f.clock.Now()) + time.Minute)
	if _, err := f.store.Extend(context.Background(), r.ID, "agent@shop", "too late"); !errors.Is(err, dsr.ErrNoExtension) {
		t.Errorf("extend past the due date: %v, want ErrNoExtension", err)
	}
}
