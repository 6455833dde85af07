package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// fileUnder stores a verified request of typ under reg for email.
func (f fixture) fileUnder(t *testing.T, reg dsr.Regulation, typ dsr.Type, email string) *dsr.Request {
	t.Helper()
	return f.fileAs(t, reg, typ, dsr.StatusVerified, email)
}

// verifying stores a GDPR access request for email waiting for its
// subject to confirm their identity: the state in which a clock may stop.
func (f fixture) verifying(t *testing.T, email string) *dsr.Request {
	t.Helper()
	return f.fileAs(t, dsr.RegulationGDPR, dsr.TypeAccess, dsr.StatusVerifying, email)
}

func (f fixture) fileAs(t *testing.T, reg dsr.Regulation, typ dsr.Type, status dsr.Status, email string) *dsr.Request {
	t.Helper()
	r, err := dsr.NewRequest(dsr.Intake{
		Type: typ, Regulation: reg, Source: "test", FiledBy: "tester", Status: status,
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

// ids collects the ids a check's query hands to fn.
func ids(t *testing.T, query func(fn func(*dsr.Due) error) error) []string {
	t.Helper()
	var out []string
	if err := query(func(d *dsr.Due) error {
		out = append(out, d.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func testCheckQueries(t *testing.T, f fixture) {
	ctx := context.Background()
	now := f.clock.Now()
	gdpr := f.newRequest(t, dsr.TypeAccess, "ada@example.com")                        // due in a month
	optout := f.fileUnder(t, dsr.RegulationCCPA, dsr.TypeOptOut, "grace@example.com") // due in 15 business days
	closed := f.fileUnder(t, dsr.RegulationCCPA, dsr.TypeOptOut, "alan@example.com")  // closed: never due
	paused := f.verifying(t, "edsger@example.com")                                    // GDPR, its clock stopped
	if _, err := f.store.Transition(ctx, closed.ID, dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.PauseClock(ctx, paused.ID, "agent", "asked for their customer number"); err != nil {
		t.Fatal(err)
	}
	remind := func(from, to time.Time, n int) []string {
		return ids(t, func(fn func(*dsr.Due) error) error { return f.store.EachToRemind(ctx, from, to, n, fn) })
	}
	escalate := func(at time.Time) []string {
		return ids(t, func(fn func(*dsr.Due) error) error { return f.store.EachToEscalate(ctx, at, fn) })
	}
	both := []string{gdpr.ID, optout.ID}
	slices.Sort(both)
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"none due within a week", remind(now, now.AddDate(0, 0, 7), 7), nil},
		{"the opt-out due within 22 days", remind(now, now.AddDate(0, 0, 22), 7), []string{optout.ID}},
		{"both due within two months", remind(now, now.AddDate(0, 2, 0), 7), both},
		{"the window's start is excluded", remind(now.AddDate(0, 0, 22), now.AddDate(0, 2, 0), 7), []string{gdpr.ID}},
		{"a window starting at a due date holds it", remind(gdpr.DueAt, gdpr.DueAt.Add(time.Millisecond), 7), []string{gdpr.ID}},
		{"a window ending at a due date does not", remind(now, gdpr.DueAt, 7), []string{optout.ID}},
		{"none overdue now", escalate(now), nil},
		{"both overdue in two months, not the paused one", escalate(now.AddDate(0, 2, 0)), both},
	}
	for _, tt := range tests {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	// A reminder had, or an escalation done, takes the request out.
	if _, err := f.store.Remind(ctx, optout.ID, 7, now, now.AddDate(0, 2, 0)); err != nil {
		t.Fatal(err)
	}
	if got := remind(now, now.AddDate(0, 2, 0), 7); !slices.Equal(got, []string{gdpr.ID}) {
		t.Errorf("after the opt-out's reminder: %v, want %s only", got, gdpr.ID)
	}
	if got := remind(now, now.AddDate(0, 2, 0), 2); !slices.Equal(got, both) {
		t.Errorf("the 2-day reminder after the 7-day one: %v, want %v", got, both)
	}
	if _, err := f.store.Escalate(ctx, gdpr.ID, now.AddDate(0, 2, 0)); err != nil {
		t.Fatal(err)
	}
	if got := escalate(now.AddDate(0, 2, 0)); !slices.Equal(got, []string{optout.ID}) {
		t.Errorf("after escalating %s: %v, want %s only", gdpr.ID, got, optout.ID)
	}
	if got := remind(now, now.AddDate(0, 2, 0), 2); !slices.Equal(got, []string{optout.ID}) {
		t.Errorf("an overdue request gets no reminder: %v, want %s only", got, optout.ID)
	}
}

func testRemindAndEscalateOnce(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	early, late := f.clock.Now(), r.DueAt.Add(time.Hour)
	steps := []struct {
		name string
		do   func() (bool, error)
		want bool
	}{
		// The update repeats the query's conditions: a request whose due
		// date left the window since it was read is not reminded.
		{"remind 7 out of its window", func() (bool, error) { return f.store.Remind(ctx, r.ID, 7, r.DueAt.Add(time.Hour), late) }, false},
		{"remind 7", func() (bool, error) { return f.store.Remind(ctx, r.ID, 7, early, late) }, true},
		{"remind 7 again", func() (bool, error) { return f.store.Remind(ctx, r.ID, 7, early, late) }, false},
		{"remind 2", func() (bool, error) { return f.store.Remind(ctx, r.ID, 2, early, late) }, true},
		{"escalate before it is due", func() (bool, error) { return f.store.Escalate(ctx, r.ID, r.DueAt.Add(-time.Hour)) }, false},
		{"escalate at its due date", func() (bool, error) { return f.store.Escalate(ctx, r.ID, r.DueAt) }, false},
		{"escalate", func() (bool, error) { return f.store.Escalate(ctx, r.ID, late) }, true},
		{"escalate again", func() (bool, error) { return f.store.Escalate(ctx, r.ID, late) }, false},
		{"remind 1 once overdue", func() (bool, error) { return f.store.Remind(ctx, r.ID, 1, early, late) }, false},
		{"remind a request that does not exist", func() (bool, error) { return f.store.Remind(ctx, missingID, 7, early, late) }, false},
		{"escalate a request that does not exist", func() (bool, error) { return f.store.Escalate(ctx, missingID, late) }, false},
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
	if !got.UpdatedAt.Equal(r.UpdatedAt) {
		t.Errorf("updated at %s, want %s unchanged: a reminder or an escalation is no change of the request", got.UpdatedAt, r.UpdatedAt)
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

// testRetentionPurges: a closed request's exports (an access request's
// only) and identities come due once it is closed; purging them is done
// once, keeps the evidence (blind index, history), removes its exported
// records and the identities its finished jobs carry.
func testRetentionPurges(t *testing.T, f fixture) {
	ctx := context.Background()
	open := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	done := f.newRequest(t, dsr.TypeAccess, "grace@example.com")
	deletion := f.newRequest(t, dsr.TypeDeletion, "alan@example.com")
	// Jobs with their identities and exported records: done's crm and
	// open's crm finished, done's shop still to run.
	var jobs []dsr.Job
	for _, r := range []*dsr.Request{done, done, open} {
		connector := "crm"
		if len(jobs) == 1 {
			connector = "shop"
		}
		j := dsr.NewJob(r.ID, connector, dsr.ActionExport, f.clock.Now())
		j.Identities = r.Identities
		jobs = append(jobs, j)
	}
	if err := f.store.CreateJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	for _, j := range []dsr.Job{jobs[0], jobs[2]} {
		claimed, err := f.store.ClaimJob(ctx, j.ID, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		w, err := f.store.NewExportWriter(ctx, claimed)
		if err != nil {
			t.Fatal(err)
		}
		for n := range 2 {
			if err := w.WriteRecord(ctx, "orders", map[string]int{"n": n}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := f.store.FinishJob(ctx, claimed, dsr.Outcome{Status: dsr.JobSucceeded, Records: 2}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*dsr.Request{done, deletion} {
		if _, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	closedAt := f.clock.Now()
	f.clock.Add(time.Hour)
	exports := func(at time.Time) []string {
		return ids(t, func(fn func(*dsr.Due) error) error { return f.store.EachExportsToPurge(ctx, at, fn) })
	}
	identities := func(at time.Time) []string {
		return ids(t, func(fn func(*dsr.Due) error) error { return f.store.EachIdentitiesToPurge(ctx, at, fn) })
	}
	if got := append(exports(closedAt), identities(closedAt)...); len(got) != 0 {
		t.Errorf("closed before its closing: %v", got)
	}
	if got, want := exports(f.clock.Now()), []string{done.ID}; !slices.Equal(got, want) {
		t.Errorf("exports to purge: %v, want %v (an access request's only)", got, want)
	}
	both := []string{done.ID, deletion.ID}
	slices.Sort(both)
	if got := identities(f.clock.Now()); !slices.Equal(got, both) {
		t.Errorf("identities to purge: %v, want %v", got, both)
	}

	if ok, err := f.store.PurgeIdentities(ctx, open.ID); err != nil || ok {
		t.Errorf("purge an open request's identities: %v, %v; want refused", ok, err)
	}
	if ok, err := f.store.PurgeIdentities(ctx, missingID); err != nil || ok {
		t.Errorf("purge a request that does not exist: %v, %v; want false", ok, err)
	}
	for i, want := range []bool{true, false} {
		if ok, err := f.store.PurgeIdentities(ctx, done.ID); err != nil || ok != want {
			t.Errorf("purge identities #%d: %v, %v; want %v", i+1, ok, err, want)
		}
		if ok, err := f.store.PurgeExports(ctx, done.ID); err != nil || ok != want {
			t.Errorf("purge exports #%d: %v, %v; want %v", i+1, ok, err, want)
		}
	}
	if got := exports(f.clock.Now()); len(got) != 0 {
		t.Errorf("exports still to purge after the purge: %v", got)
	}
	if got := identities(f.clock.Now()); !slices.Equal(got, []string{deletion.ID}) {
		t.Errorf("identities still to purge after the purge: %v, want %s", got, deletion.ID)
	}
	got, err := f.store.Request(ctx, done.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Identities) != 0 || got.PurgedAt == nil || got.ExportsPurgedAt == nil || len(got.IdentityHashes) == 0 || len(got.History) == 0 {
		t.Errorf("after purge: identities %v, purged %v, exports purged %v, hashes %d, history %d; want identities gone, evidence kept",
			got.Identities, got.PurgedAt, got.ExportsPurgedAt, len(got.IdentityHashes), len(got.History))
	}
	// The exported records of the purged request are gone, the others kept.
	for id, want := range map[string]int{jobs[0].ID: 0, jobs[2].ID: 2} {
		n := 0
		if err := f.store.EachExportRecord(ctx, id, func(string, json.RawMessage) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("export of job %s: %d records left, want %d", id, n, want)
		}
	}
	// A finished job's identities go, an unfinished one's stay (it still
	// runs) in the driver, unreadable through a sealing store, whose purge
	// destroyed their key; the open request's finished job loses its copy
	// too, as the jobs' copies are purged before the request's status is
	// checked.
	for id, want := range map[string]bool{jobs[0].ID: false, jobs[1].ID: !f.sealed, jobs[2].ID: false} {
		j, err := f.store.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if has := len(j.Identities) > 0; has != want || j.RequestID == "" || j.Connector == "" {
			t.Errorf("job %s: identities %v, want kept %v; job %+v", id, j.Identities, want, j)
		}
		if id == jobs[0].ID && j.Records != 2 {
			t.Errorf("job %s: records %d, want 2 kept", id, j.Records)
		}
	}
}

func testPauseAndResume(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.verifying(t, "ada@example.com")
	if _, err := f.store.Remind(ctx, r.ID, 7, time.Time{}, r.DueAt.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.PauseClock(ctx, missingID, "agent@shop", "x"); !errors.Is(err, dsr.ErrNotFound) {
		t.Errorf("pause a request that does not exist: %v, want ErrNotFound", err)
	}
	verified := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	if _, err := f.store.PauseClock(ctx, verified.ID, "agent@shop", "more questions"); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("pause a verified request: %v, want ErrConflict (the law stops the clock only to confirm identity)", err)
	}
	p, err := f.store.PauseClock(ctx, r.ID, "agent@shop", "asked for a utility bill")
	if err != nil || p.PausedAt == nil || len(p.Pauses) != 1 || !p.UpdatedAt.Equal(f.clock.Now()) {
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
	if len(got.Reminded) != 0 {
		t.Errorf("resumed: reminded %v, want the reminders to start over for the new due date", got.Reminded)
	}
	if stored, err := f.store.Request(ctx, r.ID); err != nil || !stored.DueAt.Equal(got.DueAt) {
		t.Errorf("stored due %v, %v; want %s", stored.DueAt, err, got.DueAt)
	}
	if _, err := f.store.ResumeClock(ctx, r.ID); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("resume a running clock: %v, want ErrConflict", err)
	}

	ccpa := f.fileUnder(t, dsr.RegulationCCPA, dsr.TypeAccess, "grace@example.com")
	if _, err := f.store.PauseClock(ctx, ccpa.ID, "agent@shop", "waiting"); !errors.Is(err, dsr.ErrNotPausable) {
		t.Errorf("pause a CCPA clock: %v, want ErrNotPausable (45 days run whatever verification takes)", err)
	}
	if _, err := f.store.Transition(ctx, r.ID, dsr.StatusVerifying, dsr.StatusCancelled, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.PauseClock(ctx, r.ID, "agent@shop", "too late"); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("pause a closed request: %v, want ErrConflict", err)
	}

	// Closed while paused: no longer paused, the pause still recorded.
	gdpr := f.verifying(t, "alan@example.com")
	if _, err := f.store.PauseClock(ctx, gdpr.ID, "agent@shop", "asked for the order number"); err != nil {
		t.Fatal(err)
	}
	closed, err := f.store.Transition(ctx, gdpr.ID, dsr.StatusVerifying, dsr.StatusDenied, dsr.Change{Actor: "t", DenialBasis: dsr.DeniedUnverifiable})
	if err != nil {
		t.Fatal(err)
	}
	if closed.PausedAt != nil || len(closed.Pauses) != 1 || closed.DenialBasis != dsr.DeniedUnverifiable {
		t.Errorf("closed while paused: paused_at %v, pauses %d, basis %q; want not paused, one pause, unverifiable", closed.PausedAt, len(closed.Pauses), closed.DenialBasis)
	}
}

func testAppeal(t *testing.T, f fixture) {
	ctx := context.Background()
	deny := func(r *dsr.Request) {
		t.Helper()
		if _, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusDenied, dsr.Change{Actor: "t", Reason: "not verified"}); err != nil {
			t.Fatal(err)
		}
	}
	va := f.fileUnder(t, dsr.RegulationVCDPA, dsr.TypeDeletion, "ada@example.com")
	if _, err := f.store.Appeal(ctx, va.ID, dsr.AppealFiling{Actor: "agent@shop", Reason: "early"}); !errors.Is(err, dsr.ErrNotAppealable) {
		t.Errorf("appeal an open request: %v, want ErrNotAppealable", err)
	}
	if _, err := f.store.Appeal(ctx, missingID, dsr.AppealFiling{Actor: "agent@shop", Reason: "x"}); !errors.Is(err, dsr.ErrNotFound) {
		t.Errorf("appeal no request: %v, want ErrNotFound", err)
	}
	deny(va)
	f.clock.Add(24 * time.Hour)
	a, err := f.store.Appeal(ctx, va.ID, dsr.AppealFiling{Actor: "agent@shop", Reason: "the person sent proof"})
	if err != nil {
		t.Fatal(err)
	}
	if a.AppealOf != va.ID || a.Status != dsr.StatusAwaitingApproval || a.Type != va.Type ||
		!a.DueAt.Equal(f.clock.Now().AddDate(0, 0, 60)) || !slices.Equal(a.IdentityHashes, va.IdentityHashes) {
		t.Errorf("appeal: %+v", a)
	}
	if stored, err := f.store.Request(ctx, a.ID); err != nil || stored.AppealOf != va.ID {
		t.Fatalf("the appeal stored: %+v, %v", stored, err)
	}
	if trail := f.trail(t, a.ID); len(trail) != 1 {
		t.Errorf("the appeal's audit chain: %d events; want its filing", len(trail))
	}
	if got, err := f.store.Request(ctx, va.ID); err != nil || got.AppealedBy != a.ID {
		t.Errorf("denied request links to its appeal: %q, %v; want %s", got.AppealedBy, err, a.ID)
	}
	if _, err := f.store.Appeal(ctx, va.ID, dsr.AppealFiling{Actor: "agent@shop", Reason: "twice"}); !errors.Is(err, dsr.ErrNotAppealable) {
		t.Errorf("second appeal: %v, want ErrNotAppealable", err)
	}
	// The appeal is denied too: that decision is final.
	if _, err := f.store.Transition(ctx, a.ID, dsr.StatusAwaitingApproval, dsr.StatusDenied, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Appeal(ctx, a.ID, dsr.AppealFiling{Actor: "agent@shop", Reason: "again"}); !errors.Is(err, dsr.ErrNotAppealable) {
		t.Errorf("appeal of an appeal: %v, want ErrNotAppealable", err)
	}
	gdpr := f.newRequest(t, dsr.TypeAccess, "grace@example.com")
	deny(gdpr)
	if _, err := f.store.Appeal(ctx, gdpr.ID, dsr.AppealFiling{Actor: "agent@shop", Reason: "no such right"}); !errors.Is(err, dsr.ErrNotAppealable) {
		t.Errorf("appeal under GDPR: %v, want ErrNotAppealable", err)
	}
}

// TestUndecidedAppealReleasesItsClaim: an appeal waiting for the person's
// verification that expires or is cancelled was never decided, so the
// denied request can be appealed again; a decided appeal is final.
func testUndecidedAppealReleasesItsClaim(t *testing.T, f fixture) {
	ctx := context.Background()
	for _, end := range []dsr.Status{dsr.StatusExpired, dsr.StatusCancelled} {
		va := f.fileUnder(t, dsr.RegulationVCDPA, dsr.TypeDeletion, "ada@example.com")
		if _, err := f.store.Transition(ctx, va.ID, dsr.StatusVerified, dsr.StatusDenied, dsr.Change{Actor: "t", Reason: "no"}); err != nil {
			t.Fatal(err)
		}
		a, err := f.store.Appeal(ctx, va.ID, dsr.AppealFiling{Actor: "agent@shop", Reason: "asks again", Verify: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.Transition(ctx, a.ID, dsr.StatusVerifying, end, dsr.Change{Actor: "t", Reason: "never verified"}); err != nil {
			t.Fatal(err)
		}
		again, err := f.store.Appeal(ctx, va.ID, dsr.AppealFiling{Actor: "agent@shop", Reason: "second try", Verify: true})
		if err != nil {
			t.Fatalf("%s appeal: a new appeal is refused: %v", end, err)
		}
		if got, err := f.store.Request(ctx, va.ID); err != nil || got.AppealedBy != again.ID {
			t.Errorf("%s appeal: the denied request names %q (%v), want the new appeal %s", end, got.AppealedBy, err, again.ID)
		}
		// The second is decided (denied): final, and its claim stays.
		if _, err := f.store.Transition(ctx, again.ID, dsr.StatusVerifying, dsr.StatusDenied, dsr.Change{Actor: "t", Reason: "no"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.Appeal(ctx, va.ID, dsr.AppealFiling{Actor: "agent@shop", Reason: "third", Verify: true}); !errors.Is(err, dsr.ErrNotAppealable) {
			t.Errorf("%s appeal: an appeal after a decided one: %v, want ErrNotAppealable", end, err)
		}
	}
}

func testExtendPastDueIsRefused(t *testing.T, f fixture) {
	ctx := context.Background()
	// Extended in time, after its 7-day reminder: the reminders start over.
	early := f.newRequest(t, dsr.TypeAccess, "grace@example.com")
	if _, err := f.store.Remind(ctx, early.ID, 7, time.Time{}, early.DueAt.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.Extend(ctx, early.ID, "agent@shop", "archives to search")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Reminded) != 0 {
		t.Errorf("extended: reminded %v, want none (the 7-day reminder is due again before the new date)", got.Reminded)
	}

	r := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	f.clock.Add(r.DueAt.Sub(f.clock.Now()) + time.Minute)
	if _, err := f.store.Extend(context.Background(), r.ID, "agent@shop", "too late"); !errors.Is(err, dsr.ErrNoExtension) {
		t.Errorf("extend past the due date: %v, want ErrNoExtension", err)
	}
}

// TestPausedRequestsDoNotExpire: a request whose clock stopped while the
// business waits for the person's answer is neither expired nor overdue at
// its first due date; once resumed it expires at the due date moved by the
// pause.
func testPausedRequestsDoNotExpire(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.verifying(t, "ada@example.com")
	if _, err := f.store.PauseClock(ctx, r.ID, "agent@shop", "asked for the order number"); err != nil {
		t.Fatal(err)
	}
	expiring := func(at time.Time) []string {
		var out []string
		if err := f.store.EachUnverifiedPastDue(ctx, at, func(x *dsr.Request) error { out = append(out, x.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	f.clock.Add(10 * 24 * time.Hour)
	if got := expiring(r.DueAt.Add(time.Hour)); len(got) != 0 {
		t.Errorf("paused, past its first due date: %v to expire, want none", got)
	}
	// Nor is it overdue, in the list or in the counts.
	if got, _, err := f.store.ListRequests(ctx, dsr.ListFilter{Overdue: true, Now: r.DueAt.Add(time.Hour), Limit: 5}); err != nil || len(got) != 0 {
		t.Errorf("paused, in the overdue list: %d, %v; want none", len(got), err)
	}
	if got, err := f.store.CountOverdue(ctx, r.DueAt.Add(time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("paused, counted overdue: %+v, %v; want none", got, err)
	}
	resumed, err := f.store.ResumeClock(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := expiring(r.DueAt.Add(time.Hour)); len(got) != 0 {
		t.Errorf("resumed after 10 days, an hour past the first due date: %v to expire, want none", got)
	}
	if got := expiring(resumed.DueAt.Add(time.Hour)); !slices.Equal(got, []string{r.ID}) {
		t.Errorf("resumed, past the moved due date: %v, want %s", got, r.ID)
	}
}
