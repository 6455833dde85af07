package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// DashboardWeeks is how many weeks the dashboard shows, this one last.
const DashboardWeeks = 12

// ErrNoStatistics is returned by Dashboard when the store cannot count
// requests (every driver can: store.Store).
var ErrNoStatistics = errors.New("the store does not count requests")

// statsStore is what the dashboard needs of the store beyond Store: the
// statistics every driver keeps (store.Store), which the metrics read too.
type statsStore interface {
	CountRequests(ctx context.Context) ([]dsr.RequestCount, error)
	CountOverdue(ctx context.Context, now time.Time) ([]dsr.RequestCount, error)
	EachCompletion(ctx context.Context, since time.Time, fn func(*dsr.Completion) error) error
}

// Dashboard is the agent console's overview: every request counted by
// status, the overdue ones, and per week the requests received and
// completed, with the share answered on time. It holds counts only.
type Dashboard struct {
	// Now is when it was made.
	Now time.Time
	// ByStatus counts every request by status, one entry per status of
	// dsr.Statuses in that order (zeros included); Total sums them.
	ByStatus []StatusCount
	Total    int64
	// Overdue counts the open requests past their due date now, their
	// clock running.
	Overdue int64
	// From and To bound the weeks, [From, To): DashboardWeeks weeks, each
	// from Monday 00:00 UTC, the last the week of Now.
	From, To time.Time
	// Weeks are the weeks, oldest first.
	Weeks []WeekFigures
	// Received counts the requests received in [From, To); Responded
	// those of them answered (completed or denied), OnTime those answered
	// by their due date (dsr.SummaryRow).
	Received, Responded, OnTime int
}

// StatusCount is how many requests are in one status.
type StatusCount struct {
	Status dsr.Status
	N      int64
}

// WeekFigures are one week's figures: the requests received in it, and
// those completed in it (whenever received).
type WeekFigures struct {
	Start     time.Time
	Received  int
	Completed int
}

// OnTimeRate is OnTime / Responded, and false when none was answered.
func (d Dashboard) OnTimeRate() (float64, bool) {
	if d.Responded == 0 {
		return 0, false
	}
	return float64(d.OnTime) / float64(d.Responded), true
}

// Dashboard returns the console's dashboard at the application's now. It
// reads the store's counts, one compliance summary per week (received and
// answered on time, as the summary report counts them) and the
// completions since the first week.
func (s *Service) Dashboard(ctx context.Context) (Dashboard, error) {
	st, ok := s.store.(statsStore)
	if !ok {
		return Dashboard{}, ErrNoStatistics
	}
	now := s.now().UTC()
	d := Dashboard{Now: now}
	counts, err := st.CountRequests(ctx)
	if err != nil {
		return Dashboard{}, fmt.Errorf("dashboard: count requests: %w", err)
	}
	by := map[dsr.Status]int64{}
	for _, c := range counts {
		by[c.Status] += c.N
		d.Total += c.N
	}
	for _, status := range dsr.Statuses {
		d.ByStatus = append(d.ByStatus, StatusCount{Status: status, N: by[status]})
	}
	overdue, err := st.CountOverdue(ctx, now)
	if err != nil {
		return Dashboard{}, fmt.Errorf("dashboard: count overdue: %w", err)
	}
	for _, c := range overdue {
		d.Overdue += c.N
	}

	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	monday := today.AddDate(0, 0, -(int(today.Weekday())+6)%7)
	d.From, d.To = monday.AddDate(0, 0, -7*(DashboardWeeks-1)), monday.AddDate(0, 0, 7)
	d.Weeks = make([]WeekFigures, DashboardWeeks)
	for i := range d.Weeks {
		start := d.From.AddDate(0, 0, 7*i)
		sum, err := s.store.Summary(ctx, start, start.AddDate(0, 0, 7))
		if err != nil {
			return Dashboard{}, fmt.Errorf("dashboard: summary: %w", err)
		}
		d.Weeks[i] = WeekFigures{Start: start, Received: sum.Total.Received}
		d.Received += sum.Total.Received
		d.Responded += sum.Total.Responded
		d.OnTime += sum.Total.OnTime
	}
	err = st.EachCompletion(ctx, d.From, func(c *dsr.Completion) error {
		if at := c.ClosedAt.UTC(); !at.Before(d.From) && at.Before(d.To) {
			d.Weeks[int(at.Sub(d.From)/(7*24*time.Hour))].Completed++
		}
		return nil
	})
	if err != nil {
		return Dashboard{}, fmt.Errorf("dashboard: completions: %w", err)
	}
	return d, nil
}
