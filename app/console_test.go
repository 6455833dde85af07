package app_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/teststore"
)

// TestDashboard: the weeks are the 12 from Monday 00:00 UTC ending with
// this one; each counts the requests received in it (those received
// before are left out) and completed in it; the status counts, the
// overdue count and the on-time figures agree with the store.
func TestDashboard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 3, 11, 10, 0, 0, 0, time.UTC) // a Wednesday
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	tick := func() time.Time { return *clock.Load() }
	st := teststore.Open(t, tick)
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	svc := app.New(app.Deps{Store: st, Queue: &queue{}, Index: idx, Now: tick})
	from := time.Date(2025, 12, 22, 0, 0, 0, 0, time.UTC) // Monday, 11 weeks before this week's
	file := func(at time.Time) string {
		t.Helper()
		email := "ada@example.com"
		f, err := svc.Create(ctx, app.Filing{By: "desk", Request: app.AgentRequest{Type: "access", Regulation: "gdpr",
			Subject: app.Subject{Email: &email}, ReceivedAt: at.Format(time.RFC3339)}})
		if err != nil {
			t.Fatal(err)
		}
		return f.Request.ID
	}
	complete := func(id string, at time.Time) {
		t.Helper()
		clock.Store(&at)
		defer clock.Store(&now)
		if _, err := st.Transition(ctx, id, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Transition(ctx, id, dsr.StatusInProgress, dsr.StatusCompleted, dsr.Change{Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	week := func(i int, d time.Duration) time.Time { return from.AddDate(0, 0, 7*i).Add(d) }

	file(from.Add(-time.Hour)) // the Sunday before the first week: not counted
	received := map[int]int{0: 1, 3: 2, 7: 1, 10: 1, 11: 2}
	var late, onTime string
	for w, n := range received {
		for i := range n {
			id := file(week(w, time.Duration(i+1)*time.Hour))
			switch {
			case w == 0 && i == 0:
				late = id
			case w == 10:
				onTime = id
			}
		}
	}
	complete(late, week(8, 36*time.Hour))   // received in week 0, past its month
	complete(onTime, week(11, 2*time.Hour)) // received in week 10

	d, err := svc.Dashboard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !d.From.Equal(from) || !d.To.Equal(from.AddDate(0, 0, 7*app.DashboardWeeks)) || len(d.Weeks) != app.DashboardWeeks {
		t.Fatalf("window [%s, %s) of %d weeks", d.From, d.To, len(d.Weeks))
	}
	for i, w := range d.Weeks {
		wantCompleted := 0
		if i == 8 || i == 11 {
			wantCompleted = 1
		}
		if !w.Start.Equal(week(i, 0)) || w.Received != received[i] || w.Completed != wantCompleted {
			t.Errorf("week %d: %+v; want start %s, %d received, %d completed", i, w, week(i, 0), received[i], wantCompleted)
		}
	}
	if d.Received != 7 || d.Responded != 2 || d.OnTime != 1 {
		t.Errorf("received %d, responded %d, on time %d; want 7, 2, 1", d.Received, d.Responded, d.OnTime)
	}
	if rate, ok := d.OnTimeRate(); !ok || rate != 0.5 {
		t.Errorf("on-time rate %v %v", rate, ok)
	}
	by := map[dsr.Status]int64{}
	for _, c := range d.ByStatus {
		by[c.Status] = c.N
	}
	if len(d.ByStatus) != len(dsr.Statuses) || by[dsr.StatusCompleted] != 2 || by[dsr.StatusVerified] != 6 || d.Total != 8 {
		t.Errorf("by status %+v, total %d", d.ByStatus, d.Total)
	}
	f, err := svc.ListFilter(app.ListQuery{Overdue: "true", Limit: "100"})
	if err != nil {
		t.Fatal(err)
	}
	page, err := svc.List(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if d.Overdue != int64(len(page.Requests)) || d.Overdue == 0 {
		t.Errorf("overdue %d; the list has %d", d.Overdue, len(page.Requests))
	}
}

// TestDashboardCommands: the dashboard costs the same number of store
// commands whatever the history: two counts, one summary per week and the
// completions of its weeks (MongoDB's command monitor).
func TestDashboardCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 3, 11, 10, 0, 0, 0, time.UTC)
	st := teststore.Open(t, func() time.Time { return now })
	st.NeedMongo(t)
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	svc := app.New(app.Deps{Store: st, Queue: &queue{}, Index: idx, Now: func() time.Time { return now }})
	file := func(n int, at time.Time) {
		t.Helper()
		for i := range n {
			email := fmt.Sprintf("p%d-%d@example.com", at.Unix(), i)
			if _, err := svc.Create(ctx, app.Filing{By: "desk", Request: app.AgentRequest{Type: "access", Regulation: "gdpr",
				Subject: app.Subject{Email: &email}, ReceivedAt: at.Format(time.RFC3339)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	commands := func() int {
		t.Helper()
		st.Commands.Reset()
		if _, err := svc.Dashboard(ctx); err != nil {
			t.Fatal(err)
		}
		return len(st.Commands.All())
	}
	file(3, now.Add(-time.Hour))
	before := commands()
	file(40, now.AddDate(-1, 0, 0)) // the history
	if after := commands(); after != before {
		t.Errorf("dashboard: %d store commands with 40 more requests in the history, %d before", after, before)
	}
	if want := 2 + app.DashboardWeeks + 1; before != want {
		t.Errorf("dashboard: %d store commands, want %d (2 counts, %d summaries, the completions): %v", before, want, app.DashboardWeeks, st.Commands.Names())
	}
}
