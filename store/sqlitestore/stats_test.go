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

// day is a date of 2026 at 10:00 UTC.
func day(month time.Month, d int) time.Time { return time.Date(2026, month, d, 10, 0, 0, 0, time.UTC) }

// at sets the fixture's clock to t.
func (f jobsFixture) at(t time.Time) { f.clock.Add(t.Sub(f.clock.Now())) }

// seeded is a request of the statistics' seed: filed at received, then
// moved through path, each move after (a duration after receipt).
type seeded struct {
	typ      dsr.Type
	reg      dsr.Regulation
	received time.Time
	start    dsr.Status // verified unless set
	path     []dsr.Status
	after    []time.Duration
	basis    dsr.DenialBasis
}

// seed files and moves the requests of list, the clock set to each
// event's time, and returns their ids.
func (f jobsFixture) seed(t *testing.T, list []seeded) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for i, s := range list {
		start := s.start
		if start == "" {
			start = dsr.StatusVerified
		}
		f.at(s.received)
		r, err := dsr.NewRequest(dsr.Intake{
			Type: s.typ, Regulation: s.reg, Source: "test", FiledBy: "tester", Status: start,
			Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: fmt.Sprintf("person%d@example.com", i), Source: dsr.SourceSubject}},
			ReceivedAt: s.received,
		}, f.index)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.s.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		from := start
		for j, to := range s.path {
			f.at(s.received.Add(s.after[j]))
			if _, err := f.s.Transition(ctx, r.ID, from, to, dsr.Change{Actor: "tester", DenialBasis: s.basis}); err != nil {
				t.Fatalf("seed %d: %s -> %s: %v", i, from, to, err)
			}
			from = to
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// statsSeed is mongostore's seed of its statistics tests. In the window
// [1 January 2026, 1 April 2026):
//
//   - access, gdpr: completed after 2, 4, 9 and 70 days (the last late),
//     denied after 1 day, one open, one cancelled;
//   - deletion, ccpa: completed after 3 and 7.5 days, denied after 2 and 6
//     days (exempt, and recorded without a basis: other);
//   - opt_out, ccpa: one expired, received at the window's first instant.
//
// Outside it: an access request completed, received a second before the
// window, and an opt-out received at its end (excluded), left verified.
func statsSeed() []seeded {
	c := func(typ dsr.Type, reg dsr.Regulation, received time.Time, days float64) seeded {
		d := time.Duration(days * 24 * float64(time.Hour))
		return seeded{typ: typ, reg: reg, received: received,
			path: []dsr.Status{dsr.StatusInProgress, dsr.StatusCompleted}, after: []time.Duration{d / 2, d}}
	}
	d := func(typ dsr.Type, reg dsr.Regulation, received time.Time, days int, basis dsr.DenialBasis) seeded {
		return seeded{typ: typ, reg: reg, received: received, path: []dsr.Status{dsr.StatusDenied},
			after: []time.Duration{time.Duration(days) * 24 * time.Hour}, basis: basis}
	}
	return []seeded{
		c(dsr.TypeAccess, dsr.RegulationGDPR, day(1, 5), 2),
		c(dsr.TypeAccess, dsr.RegulationGDPR, day(1, 10), 4),
		c(dsr.TypeAccess, dsr.RegulationGDPR, day(2, 1), 9),
		c(dsr.TypeAccess, dsr.RegulationGDPR, day(2, 3), 70),
		d(dsr.TypeAccess, dsr.RegulationGDPR, day(3, 1), 1, dsr.DeniedUnverifiable),
		{typ: dsr.TypeAccess, reg: dsr.RegulationGDPR, received: day(3, 2)},
		{typ: dsr.TypeAccess, reg: dsr.RegulationGDPR, received: day(3, 3), path: []dsr.Status{dsr.StatusCancelled}, after: []time.Duration{time.Hour}},

		c(dsr.TypeDeletion, dsr.RegulationCCPA, day(1, 15), 3),
		c(dsr.TypeDeletion, dsr.RegulationCCPA, day(1, 20), 7.5),
		d(dsr.TypeDeletion, dsr.RegulationCCPA, day(2, 10), 2, dsr.DeniedExempt),
		d(dsr.TypeDeletion, dsr.RegulationCCPA, day(2, 11), 6, ""), // recorded without a basis: other

		{typ: dsr.TypeOptOut, reg: dsr.RegulationCCPA, received: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			start: dsr.StatusVerifying, path: []dsr.Status{dsr.StatusExpired}, after: []time.Duration{10 * 24 * time.Hour}},

		c(dsr.TypeAccess, dsr.RegulationGDPR, time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC), 1),
		{typ: dsr.TypeOptOut, reg: dsr.RegulationCCPA, received: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
	}
}

func ptr(f float64) *float64 { return &f }

// TestSummary: the same report as mongostore's TestSummary, from the same
// seed.
func TestSummary(t *testing.T) {
	f := newJobsFixture(t)
	f.seed(t, statsSeed())
	f.at(day(4, 20))
	ctx := context.Background()
	got, err := f.s.Summary(ctx, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	bases := func(unverifiable, exempt, other int) map[dsr.DenialBasis]int {
		return map[dsr.DenialBasis]int{dsr.DeniedUnverifiable: unverifiable, dsr.DeniedNotConsumer: 0, dsr.DeniedExempt: exempt, dsr.DeniedOther: other}
	}
	want := &dsr.Summary{
		From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
		Rows: []dsr.SummaryRow{
			{
				Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR,
				Received: 7, Completed: 4, Denied: 1, DeniedByBasis: bases(1, 0, 0), Open: 1, Overdue: 1, Cancelled: 1,
				Responded: 5, OnTime: 4, MedianDays: ptr(4), MeanDays: ptr(17.2), OnTimeRate: ptr(0.8),
			},
			{
				Type: dsr.TypeDeletion, Regulation: dsr.RegulationCCPA,
				Received: 4, Completed: 2, Denied: 2, DeniedByBasis: bases(0, 1, 1),
				Responded: 4, OnTime: 4, MedianDays: ptr(4.5), MeanDays: ptr(4.63), OnTimeRate: ptr(1),
			},
			{
				Type: dsr.TypeOptOut, Regulation: dsr.RegulationCCPA,
				Received: 1, Expired: 1, DeniedByBasis: bases(0, 0, 0),
			},
		},
		Total: dsr.SummaryRow{
			Received: 12, Completed: 6, Denied: 3, Open: 1, Overdue: 1, Cancelled: 1, Expired: 1,
			Responded: 9, OnTime: 8, MedianDays: ptr(4), MeanDays: ptr(11.61), OnTimeRate: ptr(0.8889),
			DeniedByBasis: bases(1, 1, 1),
		},
		GeneratedAt: day(4, 20),
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(dsr.SummaryRow{})); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}

	empty, err := f.s.Summary(ctx, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if len(empty.Rows) != 0 || empty.Total.Received != 0 || empty.Total.MedianDays != nil || empty.Total.DeniedByBasis == nil {
		t.Errorf("empty window: %+v", empty)
	}
}

func TestCounts(t *testing.T) {
	f := newJobsFixture(t)
	ctx := context.Background()
	if counts, err := f.s.CountRequests(ctx); err != nil || counts == nil || len(counts) != 0 {
		t.Errorf("counts of an empty store = %#v, %v; want an empty list", counts, err)
	}
	f.seed(t, statsSeed())
	counts, err := f.s.CountRequests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, c := range counts {
		got[fmt.Sprintf("%s %s %s", c.Status, c.Type, c.Regulation)] = c.N
	}
	want := map[string]int64{
		"completed access gdpr": 5, "denied access gdpr": 1, "verified access gdpr": 1, "cancelled access gdpr": 1,
		"completed deletion ccpa": 2, "denied deletion ccpa": 2,
		"expired opt_out ccpa": 1, "verified opt_out ccpa": 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}

	// On 10 April the open access request of 2 March is past its month;
	// the opt-out of 1 April has 15 business days.
	overdue, err := f.s.CountOverdue(ctx, day(4, 10))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]dsr.RequestCount{{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, N: 1}}, overdue); diff != "" {
		t.Errorf("overdue (-want +got):\n%s", diff)
	}
	if overdue, err := f.s.CountOverdue(ctx, day(3, 2)); err != nil || len(overdue) != 0 {
		t.Errorf("overdue on 2 March: %v, %v", overdue, err)
	}

	// Completions from 1 February, oldest closing first: 9 days (closed
	// 10 February), 70 days (closed 14 April).
	var done []string
	err = f.s.EachCompletion(ctx, day(2, 1), func(c *dsr.Completion) error {
		done = append(done, fmt.Sprintf("%s %s %g", c.Type, c.Regulation, c.Days()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"access gdpr 9", "access gdpr 70"}; !slices.Equal(done, want) {
		t.Errorf("completions since 1 February: %q, want %q", done, want)
	}
	var closed []time.Time
	if err := f.s.EachCompletion(ctx, time.Time{}, func(c *dsr.Completion) error { closed = append(closed, c.ClosedAt); return nil }); err != nil || len(closed) != 7 {
		t.Errorf("every completion: %d, %v; want 7", len(closed), err)
	}
	if !slices.IsSortedFunc(closed, func(a, b time.Time) int { return a.Compare(b) }) {
		t.Errorf("completions not oldest first: %v", closed)
	}
}

// TestEachCompletionPages: more completions than a page, several closed
// at one instant, are each reported once.
func TestEachCompletionPages(t *testing.T) {
	f := newJobsFixture(t)
	var list []seeded
	for i := range 2*batch + 5 {
		// Three at each instant, so pages end within an instant.
		list = append(list, seeded{typ: dsr.TypeAccess, reg: dsr.RegulationGDPR, received: day(1, 5),
			path: []dsr.Status{dsr.StatusCancelled}, after: []time.Duration{time.Duration(i/3) * time.Minute}})
	}
	f.seed(t, list)
	// Cancelled is no completion: complete them through the store's rows.
	_, err := f.s.w.ExecContext(context.Background(), `UPDATE requests SET status = ?`, string(dsr.StatusCompleted))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	if err := f.s.EachCompletion(context.Background(), time.Time{}, func(c *dsr.Completion) error { seen[c.ID]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(list) {
		t.Errorf("%d completions reported, want %d", len(seen), len(list))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("completion %s reported %d times", id, n)
		}
	}
}

func TestJobOutcomes(t *testing.T) {
	f := newJobsFixture(t)
	ctx := context.Background()
	r := f.newRequest(t, dsr.TypeDeletion, "ada@example.com")
	created := f.clock.Now()
	jobs := f.jobsFor(t, r, dsr.ActionErase, "shop", "crm", "tickets", "mail")
	finish := func(j dsr.Job, after time.Duration, s dsr.JobStatus) {
		t.Helper()
		f.at(created.Add(after))
		claimed, err := f.s.ClaimJob(ctx, j.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.s.FinishJob(ctx, claimed, dsr.Outcome{Status: s}); err != nil {
			t.Fatal(err)
		}
	}
	finish(jobs[0], 90*time.Second, dsr.JobSucceeded)
	finish(jobs[1], time.Hour, dsr.JobFailed)
	finish(jobs[2], 2*time.Hour, dsr.JobSkipped)
	finish(jobs[3], 3*time.Hour, dsr.JobPending) // a failed attempt, to be retried: no outcome

	outcomes := func(since time.Time) []string {
		t.Helper()
		var out []string
		if err := f.s.EachJobOutcome(ctx, since, func(o *dsr.JobOutcome) error {
			out = append(out, fmt.Sprintf("%s %s %s %s", o.Connector, o.Action, o.Status, o.FinishedAt.Sub(o.CreatedAt)))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// Oldest outcome first.
	want := []string{"shop erase succeeded 1m30s", "crm erase failed 1h0m0s", "tickets erase skipped 2h0m0s"}
	if got := outcomes(time.Time{}); !slices.Equal(got, want) {
		t.Errorf("every outcome: %q, want %q", got, want)
	}
	// From the first hour on (inclusive): the failure at 1h and the skip.
	if got := outcomes(created.Add(time.Hour)); !slices.Equal(got, want[1:]) {
		t.Errorf("outcomes from 1h: %q, want %q", got, want[1:])
	}

	// A retried job has no outcome until it finishes again.
	if _, err := f.s.RetryFailedJobs(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if got := outcomes(time.Time{}); !slices.Equal(got, []string{want[0], want[2]}) {
		t.Errorf("outcomes while retried: %q", got)
	}
	finish(jobs[1], 5*time.Hour, dsr.JobSucceeded)
	want = []string{"shop erase succeeded 1m30s", "tickets erase skipped 2h0m0s", "crm erase succeeded 5h0m0s"}
	if got := outcomes(time.Time{}); !slices.Equal(got, want) {
		t.Errorf("after the retry: %q, want %q", got, want)
	}
}

func TestCountWaitingJobs(t *testing.T) {
	f := newJobsFixture(t)
	ctx := context.Background()
	if got, err := f.s.CountWaitingJobs(ctx); err != nil || got == nil || len(got) != 0 {
		t.Errorf("waiting jobs of an empty store = %#v, %v; want an empty list", got, err)
	}
	wait := func(j dsr.Job) {
		t.Helper()
		c, err := f.s.ClaimJob(ctx, j.ID, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		poll := f.clock.Now().Add(time.Hour)
		if err := f.s.FinishJob(ctx, c, dsr.Outcome{Status: dsr.JobWaiting, Handle: "h", PollAt: poll, WaitUntil: poll}); err != nil {
			t.Fatal(err)
		}
	}
	a := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	b := f.newRequest(t, dsr.TypeDeletion, "grace@example.com")
	ja := f.jobsFor(t, a, dsr.ActionExport, "shop", "crm")
	jb := f.jobsFor(t, b, dsr.ActionErase, "shop", "crm")
	jc := f.jobsFor(t, a, dsr.ActionErase, "shop")
	wait(ja[0])
	wait(jb[0])
	wait(jc[0])
	wait(ja[1])
	f.runJob(t, jb[1].ID, dsr.JobSucceeded) // not waiting
	got, err := f.s.CountWaitingJobs(ctx)
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
