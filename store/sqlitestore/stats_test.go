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
