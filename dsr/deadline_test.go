package dsr_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// t0 is when the rules' tests start; dayD is a day's length.
var t0, dayD = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), 24 * time.Hour

const hour = time.Hour

func at(d time.Duration) *time.Time { t := t0.Add(d); return &t }

func TestDeadlineWords(t *testing.T) {
	t.Parallel()
	due := t0.Add(10 * dayD)
	tests := []struct {
		name      string
		r         dsr.Request
		now       time.Time
		pastDue   bool
		overdue   bool
		responded bool
		onTime    bool
		days      float64
	}{
		{"open, before its due date", dsr.Request{Status: dsr.StatusInProgress, DueAt: due}, due.Add(-hour), false, false, false, false, 0},
		{"open, at its due date", dsr.Request{Status: dsr.StatusInProgress, DueAt: due}, due, false, false, false, false, 0},
		{"open, past its due date", dsr.Request{Status: dsr.StatusInProgress, DueAt: due}, due.Add(hour), true, true, false, false, 0},
		{"a duplicate past due is overdue", dsr.Request{Status: dsr.StatusDuplicate, DueAt: due}, due.Add(hour), true, true, false, false, 0},
		{"paused past due: its clock stopped", dsr.Request{Status: dsr.StatusVerifying, DueAt: due, PausedAt: at(dayD)}, due.Add(hour), false, false, false, false, 0},
		{"completed on its due date", dsr.Request{Status: dsr.StatusCompleted, ReceivedAt: t0, DueAt: due, ClosedAt: &due}, due.Add(hour), true, false, true, true, 10},
		{"denied late", dsr.Request{Status: dsr.StatusDenied, ReceivedAt: t0, DueAt: due, ClosedAt: at(10*dayD + 12*hour)}, due.Add(20 * dayD), true, false, true, false, 10.5},
		{"cancelled early: closed on time, not answered", dsr.Request{Status: dsr.StatusCancelled, ReceivedAt: t0, DueAt: due, ClosedAt: at(36 * hour)}, due, false, false, false, true, 1.5},
		{"completed without a closing time", dsr.Request{Status: dsr.StatusCompleted, ReceivedAt: t0, DueAt: due}, due, false, false, false, false, 0},
	}
	for _, tt := range tests {
		r := tt.r
		if got := r.PastDue(tt.now); got != tt.pastDue {
			t.Errorf("%s: PastDue = %v, want %v", tt.name, got, tt.pastDue)
		}
		if got := r.Overdue(tt.now); got != tt.overdue {
			t.Errorf("%s: Overdue = %v, want %v", tt.name, got, tt.overdue)
		}
		if got := r.Responded(); got != tt.responded {
			t.Errorf("%s: Responded = %v, want %v", tt.name, got, tt.responded)
		}
		if got := r.OnTime(); got != tt.onTime {
			t.Errorf("%s: OnTime = %v, want %v", tt.name, got, tt.onTime)
		}
		if got := r.DaysToRespond(); got != tt.days {
			t.Errorf("%s: DaysToRespond = %v, want %v", tt.name, got, tt.days)
		}
	}
}

func TestExtendRule(t *testing.T) {
	t.Parallel()
	due := t0.Add(45 * dayD)
	ccpa := func(mod func(*dsr.Request)) dsr.Request {
		r := dsr.Request{Type: dsr.TypeDeletion, Regulation: dsr.RegulationCCPA, Status: dsr.StatusInProgress, DueAt: due,
			Reminded: []int{7}, PendingNotices: []string{dsr.NoticeReceipt}}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	tests := []struct {
		name    string
		r       dsr.Request
		now     time.Time
		want    error
		wantDue time.Time
	}{
		{"CCPA: 45 more days", ccpa(nil), t0, nil, due.Add(45 * dayD)},
		{"on the due date itself", ccpa(nil), due, nil, due.Add(45 * dayD)},
		{"GDPR: two more months", dsr.Request{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerifying, DueAt: t0.AddDate(0, 1, 0)}, t0, nil, t0.AddDate(0, 3, 0)},
		{"extended before", ccpa(func(r *dsr.Request) { r.Extension = &dsr.Extension{At: t0} }), t0, dsr.ErrNoExtension, due},
		{"LGPD allows none", dsr.Request{Type: dsr.TypeAccess, Regulation: dsr.RegulationLGPD, Status: dsr.StatusInProgress, DueAt: due}, t0, dsr.ErrNoExtension, due},
		{"CCPA opt-out allows none", ccpa(func(r *dsr.Request) { r.Type = dsr.TypeOptOut }), t0, dsr.ErrNoExtension, due},
		{"closed", ccpa(func(r *dsr.Request) { r.Status = dsr.StatusCompleted }), t0, dsr.ErrConflict, due},
		{"past its due date", ccpa(nil), due.Add(time.Millisecond), dsr.ErrNoExtension, due},
	}
	for _, tt := range tests {
		r := tt.r
		err := r.Extend("agent", "backlog", tt.now)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: Extend = %v, want %v", tt.name, err, tt.want)
			continue
		}
		if !r.DueAt.Equal(tt.wantDue) {
			t.Errorf("%s: due %s, want %s", tt.name, r.DueAt, tt.wantDue)
		}
		if err != nil {
			if r.Extension != tt.r.Extension || !slices.Equal(r.Reminded, tt.r.Reminded) {
				t.Errorf("%s: refused, yet the request changed: %+v", tt.name, r)
			}
			continue
		}
		if e := r.Extension; e == nil || e.By != "agent" || e.Reason != "backlog" || !e.At.Equal(tt.now) || !e.From.Equal(tt.r.DueAt) {
			t.Errorf("%s: extension %+v", tt.name, e)
		}
		if r.Reminded != nil || !slices.Contains(r.PendingNotices, dsr.NoticeExtended) {
			t.Errorf("%s: reminded %v, pending %v; want reminders reset, the extended notice due", tt.name, r.Reminded, r.PendingNotices)
		}
	}
}

func TestPauseRule(t *testing.T) {
	t.Parallel()
	gdpr := func(s dsr.Status, paused *time.Time) dsr.Request {
		return dsr.Request{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Status: s, DueAt: t0.AddDate(0, 1, 0), PausedAt: paused}
	}
	tests := []struct {
		name string
		r    dsr.Request
		want error
	}{
		{"GDPR, verifying", gdpr(dsr.StatusVerifying, nil), nil},
		{"GDPR, received", gdpr(dsr.StatusReceived, nil), nil},
		{"GDPR, verified: identity confirmed", gdpr(dsr.StatusVerified, nil), dsr.ErrConflict},
		{"GDPR, closed", gdpr(dsr.StatusDenied, nil), dsr.ErrConflict},
		{"GDPR, paused already", gdpr(dsr.StatusVerifying, at(0)), dsr.ErrConflict},
		{"CCPA: 45 days whatever verification takes", dsr.Request{Type: dsr.TypeAccess, Regulation: dsr.RegulationCCPA, Status: dsr.StatusVerifying}, dsr.ErrNotPausable},
	}
	for _, tt := range tests {
		r := tt.r
		now := t0.Add(hour)
		err := r.PauseClock("agent", "asked for a customer number", now)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: PauseClock = %v, want %v", tt.name, err, tt.want)
			continue
		}
		if err != nil {
			if r.PausedAt != tt.r.PausedAt || len(r.Pauses) != 0 {
				t.Errorf("%s: refused, yet paused: %+v", tt.name, r)
			}
			continue
		}
		if r.PausedAt == nil || !r.PausedAt.Equal(now) || len(r.Pauses) != 1 || r.Pauses[0] != (dsr.Pause{By: "agent", At: now, Reason: "asked for a customer number"}) {
			t.Errorf("%s: paused at %v, pauses %+v", tt.name, r.PausedAt, r.Pauses)
		}
	}
}

func TestResumeRule(t *testing.T) {
	t.Parallel()
	due := t0.AddDate(0, 1, 0)
	paused := dsr.Request{Status: dsr.StatusVerifying, DueAt: due, PausedAt: at(0), Reminded: []int{7},
		Pauses: []dsr.Pause{{By: "a", At: t0.Add(-dayD), ResumedAt: at(-hour)}, {By: "b", At: t0}}}
	r := paused
	r.Pauses = slices.Clone(paused.Pauses)
	now := t0.Add(3*dayD + hour)
	if err := r.ResumeClock(now); err != nil {
		t.Fatal(err)
	}
	if !r.DueAt.Equal(due.Add(3*dayD+hour)) || r.PausedAt != nil || r.Reminded != nil {
		t.Errorf("resumed: due %s (want the pause's length later), paused %v, reminded %v", r.DueAt, r.PausedAt, r.Reminded)
	}
	if len(r.Pauses) != 2 || r.Pauses[1].ResumedAt == nil || !r.Pauses[1].ResumedAt.Equal(now) || !r.Pauses[0].ResumedAt.Equal(t0.Add(-hour)) {
		t.Errorf("pauses %+v: want the last one ended now", r.Pauses)
	}
	if paused.Pauses[1].ResumedAt != nil {
		t.Errorf("the request's earlier pauses were changed in place")
	}
	for _, r := range []dsr.Request{{Status: dsr.StatusVerifying, DueAt: due}, {Status: dsr.StatusVerifying, DueAt: due, PausedAt: at(0)}} {
		if err := r.ResumeClock(now); !errors.Is(err, dsr.ErrConflict) || !r.DueAt.Equal(due) {
			t.Errorf("resume without a pause: %v, due %s; want ErrConflict, unchanged", err, r.DueAt)
		}
	}
}

func TestStatusSets(t *testing.T) {
	t.Parallel()
	var open, closed []dsr.Status
	for _, s := range dsr.Statuses {
		if s.Open() == s.Closed() {
			t.Errorf("%s: open %v, closed %v: want exactly one", s, s.Open(), s.Closed())
		}
		if s.Open() {
			open = append(open, s)
		} else {
			closed = append(closed, s)
		}
	}
	if !slices.Equal(dsr.OverdueStatuses, open) || !slices.Equal(dsr.ClosedStatuses, closed) {
		t.Errorf("OverdueStatuses %v, ClosedStatuses %v; want %v and %v", dsr.OverdueStatuses, dsr.ClosedStatuses, open, closed)
	}
	if dsr.Status("archived").Open() || dsr.Status("archived").Closed() {
		t.Errorf("an unknown status is open or closed")
	}
	subset := func(name string, sub []dsr.Status) {
		for _, s := range sub {
			if !slices.Contains(dsr.OverdueStatuses, s) {
				t.Errorf("%s holds %s, which is not open", name, s)
			}
		}
	}
	subset("ActiveStatuses", dsr.ActiveStatuses)
	subset("VerifiedOpenStatuses", dsr.VerifiedOpenStatuses)
	subset("PausableStatuses", dsr.PausableStatuses)
	if slices.Contains(dsr.ActiveStatuses, dsr.StatusDuplicate) || len(dsr.ActiveStatuses) != len(dsr.OverdueStatuses)-1 {
		t.Errorf("ActiveStatuses %v: want every open status but duplicate", dsr.ActiveStatuses)
	}
}
