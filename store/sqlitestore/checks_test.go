package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

func TestCheckQueries(t *testing.T) {
	t.Parallel()
	f := newReqFixture(t, "")
	ctx := context.Background()
	now := f.clock.Now()
	gdpr := f.verified(t, dsr.TypeAccess, "ada@example.com")                                         // due in a month
	optout := f.file(t, dsr.RegulationCCPA, dsr.TypeOptOut, dsr.StatusVerified, "grace@example.com") // due in 15 business days
	closed := f.file(t, dsr.RegulationCCPA, dsr.TypeOptOut, dsr.StatusVerified, "alan@example.com")  // closed: never due
	paused := f.verifying(t, "edsger@example.com")                                                   // its clock stopped
	f.move(t, closed.ID, dsr.StatusVerified, dsr.StatusCancelled)
	if _, err := f.store.PauseClock(ctx, paused.ID, "agent", "asked for their customer number"); err != nil {
		t.Fatal(err)
	}
	remind := func(from, to time.Time, n int) []string {
		return dueIDs(t, func(fn func(*dsr.Due) error) error { return f.store.EachToRemind(ctx, from, to, n, fn) })
	}
	escalate := func(at time.Time) []string {
		return dueIDs(t, func(fn func(*dsr.Due) error) error { return f.store.EachToEscalate(ctx, at, fn) })
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

// TestChecksPageThroughBatches: more requests than one batch, each handed
// to fn once while fn writes (escalating each), in due order.
func TestChecksPageThroughBatches(t *testing.T) {
	t.Parallel()
	f := newReqFixture(t, "")
	ctx := context.Background()
	var reqs []*dsr.Request
	for i := range 2*batch + 17 {
		r := f.value(t, dsr.RegulationGDPR, dsr.TypeAccess, dsr.StatusVerified, fmt.Sprintf("p%d@example.com", i))
		r.DueAt = f.clock.Now().Add(time.Duration(i%7) * time.Hour) // ties across batches
		reqs = append(reqs, r)
	}
	for i, err := range f.store.CreateRequests(ctx, reqs) {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	at := f.clock.Now().Add(24 * time.Hour)
	var seen []dsr.Due
	err := f.store.EachToEscalate(ctx, at, func(d *dsr.Due) error {
		seen = append(seen, *d)
		ok, err := f.store.Escalate(ctx, d.ID, at)
		if err == nil && !ok {
			err = fmt.Errorf("escalate %s: not escalated", d.ID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(reqs) {
		t.Fatalf("%d handed to fn, want %d", len(seen), len(reqs))
	}
	sorted := slices.IsSortedFunc(seen, func(a, b dsr.Due) int {
		if c := a.DueAt.Compare(b.DueAt); c != 0 {
			return c
		}
		return cmpString(a.ID, b.ID)
	})
	if !sorted {
		t.Errorf("not in (due, id) order")
	}
	if got := dueIDs(t, func(fn func(*dsr.Due) error) error { return f.store.EachToEscalate(ctx, at, fn) }); len(got) != 0 {
		t.Errorf("a second run finds %d", len(got))
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestRemindAndEscalateOnce(t *testing.T) {
	t.Parallel()
	f := newReqFixture(t, "")
	ctx := context.Background()
	r := f.verified(t, dsr.TypeAccess, "ada@example.com")
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
		{"remind a request that does not exist", func() (bool, error) { return f.store.Remind(ctx, "nope", 7, early, late) }, false},
		{"escalate a request that does not exist", func() (bool, error) { return f.store.Escalate(ctx, "nope", late) }, false},
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
		t.Errorf("updated at %s, want %s unchanged (as on MongoDB)", got.UpdatedAt, r.UpdatedAt)
	}
}

// TestConcurrentRemindAndEscalate: of many runs at once, one reminds and
// one escalates.
func TestConcurrentRemindAndEscalate(t *testing.T) {
	t.Parallel()
	f := newReqFixture(t, "")
	ctx := context.Background()
	r := f.verified(t, dsr.TypeAccess, "ada@example.com")
	late := r.DueAt.Add(time.Hour)
	var reminded, escalated, failed int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			rok, rerr := f.store.Remind(ctx, r.ID, 7, time.Time{}, r.DueAt.Add(time.Millisecond))
			eok, eerr := f.store.Escalate(ctx, r.ID, late)
			mu.Lock()
			defer mu.Unlock()
			if rerr != nil || eerr != nil {
				failed++
				t.Errorf("remind: %v, escalate: %v", rerr, eerr)
			}
			if rok {
				reminded++
			}
			if eok {
				escalated++
			}
		})
	}
	wg.Wait()
	if reminded != 1 || escalated != 1 {
		t.Errorf("reminded %d times, escalated %d times; want once each", reminded, escalated)
	}
}

func TestRetentionPurges(t *testing.T) {
	t.Parallel()
	f := newReqFixture(t, "")
	ctx := context.Background()
	open := f.verified(t, dsr.TypeAccess, "ada@example.com")
	done := f.verified(t, dsr.TypeAccess, "grace@example.com")
	deletion := f.verified(t, dsr.TypeDeletion, "alan@example.com")
	f.move(t, done.ID, dsr.StatusVerified, dsr.StatusCancelled)
	f.move(t, deletion.ID, dsr.StatusVerified, dsr.StatusCancelled)
	closedAt := f.clock.Now()
	f.clock.Add(time.Hour)
	// Exported records and jobs, written as the jobs side writes them.
	ident := []dsr.Identity{{Kind: dsr.KindEmail, Value: "grace@example.com", Source: dsr.SourceSubject}}
	for i, j := range []dsr.Job{
		{ID: done.ID + ":crm", RequestID: done.ID, Connector: "crm", Action: dsr.ActionExport, Status: dsr.JobSucceeded, Identities: ident, Records: 2},
		{ID: done.ID + ":shop", RequestID: done.ID, Connector: "shop", Action: dsr.ActionExport, Status: dsr.JobPending, Identities: ident},
		{ID: open.ID + ":crm", RequestID: open.ID, Connector: "crm", Action: dsr.ActionExport, Status: dsr.JobSucceeded, Identities: ident},
	} {
		j.CreatedAt, j.UpdatedAt = f.clock.Now(), f.clock.Now()
		err := f.store.write(ctx, func(tx *wtx) error {
			if err := insertJob(ctx, tx, &j); err != nil {
				return err
			}
			for seq := range 2 {
				if err := insertExportRecord(ctx, tx, j.ID, j.RequestID, "orders", int64(seq), fmt.Sprintf(`{"n":%d}`, i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	exports := func(at time.Time) []string {
		return dueIDs(t, func(fn func(*dsr.Due) error) error { return f.store.EachExportsToPurge(ctx, at, fn) })
	}
	identities := func(at time.Time) []string {
		return dueIDs(t, func(fn func(*dsr.Due) error) error { return f.store.EachIdentitiesToPurge(ctx, at, fn) })
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
	if ok, err := f.store.PurgeIdentities(ctx, "nope"); err != nil || ok {
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
	var left, others int
	if err := f.store.r.QueryRowContext(ctx, `SELECT count(*) FROM export_records WHERE request_id = ?`, done.ID).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if err := f.store.r.QueryRowContext(ctx, `SELECT count(*) FROM export_records WHERE request_id = ?`, open.ID).Scan(&others); err != nil {
		t.Fatal(err)
	}
	if left != 0 || others != 2 {
		t.Errorf("export records: %d of the purged request left, %d of the other; want 0 and 2", left, others)
	}
	// A finished job's identities go, an unfinished one's stay (it still
	// runs); an open request's finished job loses its copy too, as on
	// MongoDB (its purge ran first).
	for id, want := range map[string]bool{done.ID + ":crm": false, done.ID + ":shop": true, open.ID + ":crm": false} {
		var doc string
		if err := f.store.r.QueryRowContext(ctx, `SELECT doc FROM jobs WHERE id = ?`, id).Scan(&doc); err != nil {
			t.Fatal(err)
		}
		var j dsr.Job
		if err := decode(doc, &j); err != nil {
			t.Fatal(err)
		}
		if has := len(j.Identities) > 0; has != want || j.RequestID == "" || j.Connector == "" {
			t.Errorf("job %s: identities %v, want kept %v; job %+v", id, j.Identities, want, j)
		}
		if id == done.ID+":crm" && j.Records != 2 {
			t.Errorf("job %s: records %d, want 2 kept", id, j.Records)
		}
	}
}

func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	f := newReqFixture(t, "")
	ctx := context.Background()
	r := f.verifying(t, "ada@example.com")
	if _, err := f.store.Remind(ctx, r.ID, 7, time.Time{}, r.DueAt.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.PauseClock(ctx, "nope", "agent", "x"); !errors.Is(err, dsr.ErrNotFound) {
		t.Errorf("pause a request that does not exist: %v, want ErrNotFound", err)
	}
	verified := f.verified(t, dsr.TypeAccess, "ada@example.com")
	if _, err := f.store.PauseClock(ctx, verified.ID, "agent", "more questions"); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("pause a verified request: %v, want ErrConflict", err)
	}
	p, err := f.store.PauseClock(ctx, r.ID, "agent", "asked for a utility bill")
	if err != nil || p.PausedAt == nil || len(p.Pauses) != 1 || !p.UpdatedAt.Equal(f.clock.Now()) {
		t.Fatalf("pause: %+v, %v", p, err)
	}
	if _, err := f.store.PauseClock(ctx, r.ID, "agent", "again"); !errors.Is(err, dsr.ErrConflict) {
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
		t.Errorf("resumed: reminded %v, want the reminders to start over", got.Reminded)
	}
	if stored, err := f.store.Request(ctx, r.ID); err != nil || !stored.DueAt.Equal(got.DueAt) {
		t.Errorf("stored due %v, %v; want %s", stored.DueAt, err, got.DueAt)
	}
	if _, err := f.store.ResumeClock(ctx, r.ID); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("resume a running clock: %v, want ErrConflict", err)
	}
	ccpa := f.file(t, dsr.RegulationCCPA, dsr.TypeAccess, dsr.StatusVerified, "grace@example.com")
	if _, err := f.store.PauseClock(ctx, ccpa.ID, "agent", "waiting"); !errors.Is(err, dsr.ErrNotPausable) {
		t.Errorf("pause a CCPA clock: %v, want ErrNotPausable", err)
	}
	f.move(t, r.ID, dsr.StatusVerifying, dsr.StatusCancelled)
	if _, err := f.store.PauseClock(ctx, r.ID, "agent", "too late"); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("pause a closed request: %v, want ErrConflict", err)
	}
}

// TestConcurrentPauseClock: of several agents pausing one clock at once,
// exactly one wins; the others get ErrConflict, and one pause is recorded.
func TestConcurrentPauseClock(t *testing.T) {
	t.Parallel()
	f := newReqFixture(t, "")
	ctx := context.Background()
	r := f.verifying(t, "ada@example.com")
	var wins, conflicts int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := f.store.PauseClock(ctx, r.ID, fmt.Sprint("agent", i), "asked for a bill")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, dsr.ErrConflict):
				conflicts++
			default:
				t.Errorf("pause: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := f.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if wins != 1 || conflicts != 7 || len(got.Pauses) != 1 || got.PausedAt == nil {
		t.Errorf("%d won, %d conflicts, %d pauses recorded; want 1, 7, 1", wins, conflicts, len(got.Pauses))
	}
}

func TestExtend(t *testing.T) {
	t.Parallel()
	f := newReqFixture(t, "")
	ctx := context.Background()
	early := f.verified(t, dsr.TypeAccess, "grace@example.com")
	if _, err := f.store.Remind(ctx, early.ID, 7, time.Time{}, early.DueAt.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.Extend(ctx, early.ID, "agent", "archives to search")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Reminded) != 0 || got.Extension == nil || !got.DueAt.After(early.DueAt) ||
		!slices.Contains(got.PendingNotices, dsr.NoticeExtended) || !got.UpdatedAt.Equal(f.clock.Now()) {
		t.Errorf("extended: %+v", got)
	}
	if _, err := f.store.Extend(ctx, early.ID, "agent", "twice"); !errors.Is(err, dsr.ErrNoExtension) {
		t.Errorf("extend twice: %v, want ErrNoExtension", err)
	}
	// A duplicate is open but not active: its clock is its original's.
	dup := f.value(t, dsr.RegulationGDPR, dsr.TypeAccess, dsr.StatusVerified, "ada@example.com")
	dup.Status = dsr.StatusDuplicate
	if err := f.store.CreateRequest(ctx, dup); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Extend(ctx, dup.ID, "agent", "x"); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("extend a duplicate: %v, want ErrConflict", err)
	}
	if _, err := f.store.Extend(ctx, "nope", "agent", "x"); !errors.Is(err, dsr.ErrNotFound) {
		t.Errorf("extend a request that does not exist: %v, want ErrNotFound", err)
	}
	r := f.verified(t, dsr.TypeAccess, "alan@example.com")
	f.clock.Add(r.DueAt.Sub(f.clock.Now()) + time.Minute)
	if _, err := f.store.Extend(ctx, r.ID, "agent", "too late"); !errors.Is(err, dsr.ErrNoExtension) {
		t.Errorf("extend past the due date: %v, want ErrNoExtension", err)
	}
}
