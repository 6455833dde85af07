package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// day is a date of 2026 at 10:00 UTC.
func day(month time.Month, d int) time.Time { return time.Date(2026, month, d, 10, 0, 0, 0, time.UTC) }

// at sets the fixture's clock to t.
func (f fixture) at(t time.Time) { f.clock.Add(t.Sub(f.clock.Now())) }

// seeded is a request of the statistics' seed: filed at received, then
// moved through path, each move one after (a duration after receipt) the
// previous.
type seeded struct {
	typ      dsr.Type
	reg      dsr.Regulation
	received time.Time
	start    dsr.Status // verified unless set
	// path is where the request goes, and when (after receipt); a denial
	// is recorded with basis.
	path  []dsr.Status
	after []time.Duration
	basis dsr.DenialBasis
}

// seed files and moves the requests of list through the store, with the
// clock set to each event's time, and returns their ids.
func (f fixture) seed(t *testing.T, list []seeded) []string {
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
		if err := f.store.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		from := start
		for j, to := range s.path {
			f.at(s.received.Add(s.after[j]))
			if _, err := f.store.Transition(ctx, r.ID, from, to, dsr.Change{Actor: "tester", DenialBasis: s.basis}); err != nil {
				t.Fatalf("seed %d: %s -> %s: %v", i, from, to, err)
			}
			from = to
		}
		ids = append(ids, r.ID)
	}
	return ids
}

const hour = time.Hour

// completedAfter is the path of a request processed and completed d after
// its receipt.
func completedAfter(d time.Duration) ([]dsr.Status, []time.Duration) {
	return []dsr.Status{dsr.StatusInProgress, dsr.StatusCompleted}, []time.Duration{d / 2, d}
}

// statsSeed is the seed of the statistics tests. In the window [1 January
// 2026, 1 April 2026):
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
		p, a := completedAfter(time.Duration(days * 24 * float64(hour)))
		return seeded{typ: typ, reg: reg, received: received, path: p, after: a}
	}
	d := func(typ dsr.Type, reg dsr.Regulation, received time.Time, days int, basis dsr.DenialBasis) seeded {
		return seeded{typ: typ, reg: reg, received: received, path: []dsr.Status{dsr.StatusDenied},
			after: []time.Duration{time.Duration(days) * 24 * hour}, basis: basis}
	}
	return []seeded{
		c(dsr.TypeAccess, dsr.RegulationGDPR, day(1, 5), 2),
		c(dsr.TypeAccess, dsr.RegulationGDPR, day(1, 10), 4),
		c(dsr.TypeAccess, dsr.RegulationGDPR, day(2, 1), 9),
		c(dsr.TypeAccess, dsr.RegulationGDPR, day(2, 3), 70),
		d(dsr.TypeAccess, dsr.RegulationGDPR, day(3, 1), 1, dsr.DeniedUnverifiable),
		{typ: dsr.TypeAccess, reg: dsr.RegulationGDPR, received: day(3, 2)},
		{typ: dsr.TypeAccess, reg: dsr.RegulationGDPR, received: day(3, 3), path: []dsr.Status{dsr.StatusCancelled}, after: []time.Duration{hour}},

		c(dsr.TypeDeletion, dsr.RegulationCCPA, day(1, 15), 3),
		c(dsr.TypeDeletion, dsr.RegulationCCPA, day(1, 20), 7.5),
		d(dsr.TypeDeletion, dsr.RegulationCCPA, day(2, 10), 2, dsr.DeniedExempt),
		d(dsr.TypeDeletion, dsr.RegulationCCPA, day(2, 11), 6, ""), // recorded without a basis: other

		{typ: dsr.TypeOptOut, reg: dsr.RegulationCCPA, received: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			start: dsr.StatusVerifying, path: []dsr.Status{dsr.StatusExpired}, after: []time.Duration{10 * 24 * hour}},

		c(dsr.TypeAccess, dsr.RegulationGDPR, time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC), 1),
		{typ: dsr.TypeOptOut, reg: dsr.RegulationCCPA, received: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
	}
}

func ptr(f float64) *float64 { return &f }

func testSummary(t *testing.T, f fixture) {
	f.seed(t, statsSeed())
	f.at(day(4, 20))
	ctx := context.Background()
	got, err := f.store.Summary(ctx, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
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
				// Days to respond 1, 2, 4, 9, 70: median 4 (an odd count),
				// mean 86/5; the 70 days are late. The open one, received
				// 2 March, was due 2 April: overdue on 20 April.
				Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR,
				Received: 7, Completed: 4, Denied: 1, DeniedByBasis: bases(1, 0, 0), Open: 1, Overdue: 1, Cancelled: 1,
				Responded: 5, OnTime: 4, MedianDays: ptr(4), MeanDays: ptr(17.2), OnTimeRate: ptr(0.8),
			},
			{
				// 2, 3, 6, 7.5: median (3+6)/2 (an even count), mean
				// 18.5/4 = 4.625, rounded to 4.63.
				Type: dsr.TypeDeletion, Regulation: dsr.RegulationCCPA,
				Received: 4, Completed: 2, Denied: 2, DeniedByBasis: bases(0, 1, 1),
				Responded: 4, OnTime: 4, MedianDays: ptr(4.5), MeanDays: ptr(4.63), OnTimeRate: ptr(1),
			},
			{
				// Nothing answered: no median, mean or rate.
				Type: dsr.TypeOptOut, Regulation: dsr.RegulationCCPA,
				Received: 1, Expired: 1, DeniedByBasis: bases(0, 0, 0),
			},
		},
		Total: dsr.SummaryRow{
			// 1, 2, 2, 3, 4, 6, 7.5, 9, 70: median 4, mean 104.5/9 =
			// 11.6111..., on time 8/9 = 0.8888...
			Received: 12, Completed: 6, Denied: 3, Open: 1, Overdue: 1, Cancelled: 1, Expired: 1,
			Responded: 9, OnTime: 8, MedianDays: ptr(4), MeanDays: ptr(11.61), OnTimeRate: ptr(0.8889),
			DeniedByBasis: bases(1, 1, 1),
		},
		GeneratedAt: day(4, 20),
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(dsr.SummaryRow{})); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}

	// A window with nothing in it.
	empty, err := f.store.Summary(ctx, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if len(empty.Rows) != 0 || empty.Total.Received != 0 || empty.Total.MedianDays != nil || empty.Total.DeniedByBasis == nil {
		t.Errorf("empty window: %+v", empty)
	}
}

func testCounts(t *testing.T, f fixture) {
	ctx := context.Background()
	if counts, err := f.store.CountRequests(ctx); err != nil || counts == nil || len(counts) != 0 {
		t.Errorf("counts of an empty store = %#v, %v; want an empty list", counts, err)
	}
	f.seed(t, statsSeed())
	counts, err := f.store.CountRequests(ctx)
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
	overdue, err := f.store.CountOverdue(ctx, day(4, 10))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]dsr.RequestCount{{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, N: 1}}, overdue); diff != "" {
		t.Errorf("overdue (-want +got):\n%s", diff)
	}
	if overdue, err := f.store.CountOverdue(ctx, day(3, 2)); err != nil || len(overdue) != 0 {
		t.Errorf("overdue on 2 March: %v, %v", overdue, err)
	}

	// Completions from 1 February, oldest closing first: 9 days (closed
	// 10 February) and 70 days (closed 14 April), access; 7.5 days
	// (deletion, received in January, completed on 27 January: not).
	var done []string
	err = f.store.EachCompletion(ctx, day(2, 1), func(c *dsr.Completion) error {
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
	if err := f.store.EachCompletion(ctx, time.Time{}, func(c *dsr.Completion) error { closed = append(closed, c.ClosedAt); return nil }); err != nil || len(closed) != 7 {
		t.Errorf("every completion: %d, %v; want 7", len(closed), err)
	}
	if !slices.IsSortedFunc(closed, func(a, b time.Time) int { return a.Compare(b) }) {
		t.Errorf("completions not oldest first: %v", closed)
	}
}

func testJobOutcomes(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.newRequest(t, dsr.TypeDeletion, "ada@example.com")
	created := f.clock.Now()
	var jobs []dsr.Job
	for _, c := range []string{"shop", "crm", "tickets", "mail"} {
		jobs = append(jobs, dsr.NewJob(r.ID, c, dsr.ActionErase, created))
	}
	if err := f.store.CreateJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	finish := func(j dsr.Job, after time.Duration, s dsr.JobStatus) {
		t.Helper()
		f.at(created.Add(after))
		claimed, err := f.store.ClaimJob(ctx, j.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.FinishJob(ctx, claimed, dsr.Outcome{Status: s}); err != nil {
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
		if err := f.store.EachJobOutcome(ctx, since, func(o *dsr.JobOutcome) error {
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
	if _, err := f.store.RetryFailedJobs(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if got := outcomes(time.Time{}); !slices.Equal(got, []string{want[0], want[2]}) {
		t.Errorf("outcomes while retried: %q, want %q", got, []string{want[0], want[2]})
	}
	finish(jobs[1], 5*time.Hour, dsr.JobSucceeded)
	want = []string{"shop erase succeeded 1m30s", "tickets erase skipped 2h0m0s", "crm erase succeeded 5h0m0s"}
	if got := outcomes(time.Time{}); !slices.Equal(got, want) {
		t.Errorf("after the retry: %q, want %q", got, want)
	}
}
