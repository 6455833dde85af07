package handlers_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

type clockJSON struct {
	Rule struct {
		Basis   string     `json:"basis"`
		Respond dsr.Period `json:"respond"`
	} `json:"rule"`
	RulesVersion  string      `json:"rules_version"`
	StartedAt     time.Time   `json:"started_at"`
	FirstDueAt    time.Time   `json:"first_due_at"`
	DueAt         time.Time   `json:"due_at"`
	ReceiptDueAt  *time.Time  `json:"receipt_due_at"`
	Paused        bool        `json:"paused"`
	Pauses        []dsr.Pause `json:"pauses"`
	Holidays      []string    `json:"holidays"`
	RemindersSent []int       `json:"reminders_sent"`
	AppealOf      string      `json:"appeal_of"`
}

func TestClock(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	ccpa := a.filed(`{"type":"access","regulation":"ccpa","subject":{"email":"ada@example.com"}}`)
	var c clockJSON
	if resp := a.do("GET", "/v1/requests/"+ccpa+"/clock", auditorKey, "", "", &c); resp.StatusCode != http.StatusOK {
		t.Fatalf("clock: %d", resp.StatusCode)
	}
	if c.Rule.Respond != (dsr.Period{N: 45, Unit: dsr.Days}) || !strings.Contains(c.Rule.Basis, "7021") || c.RulesVersion != dsr.RulesVersion ||
		!c.FirstDueAt.Equal(c.StartedAt.AddDate(0, 0, 45)) || !c.DueAt.Equal(c.FirstDueAt) || c.ReceiptDueAt == nil ||
		c.Paused || c.Pauses == nil || c.Holidays == nil || c.RemindersSent == nil {
		t.Errorf("ccpa clock: %+v", c)
	}
	if resp := a.do("POST", "/v1/requests/"+ccpa+"/pause", agentKey, "application/json", `{"reason":"asked for ID"}`, nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("pause a CCPA clock: %d, want 409", resp.StatusCode)
	}

	verified := a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"alan@example.com"}}`)
	if resp := a.do("POST", "/v1/requests/"+verified+"/pause", agentKey, "application/json", `{"reason":"more questions"}`, nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("pause a verified request: %d, want 409 (the clock stops only to confirm identity)", resp.StatusCode)
	}

	// Filed unverified: the person must confirm their identity.
	gdpr := a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"grace@example.com"},"identity":{"verified":false}}`)
	steps := []struct {
		name, path, body string
		want             int
	}{
		{"pause without a reason", "pause", `{}`, http.StatusBadRequest},
		{"resume a running clock", "resume", ``, http.StatusConflict},
		{"pause", "pause", `{"reason":"asked for a utility bill"}`, http.StatusOK},
		{"pause again", "pause", `{"reason":"again"}`, http.StatusConflict},
		{"resume", "resume", ``, http.StatusOK},
	}
	for _, s := range steps {
		ct := ""
		if s.body != "" {
			ct = "application/json"
		}
		if resp := a.do("POST", "/v1/requests/"+gdpr+"/"+s.path, agentKey, ct, s.body, nil); resp.StatusCode != s.want {
			t.Errorf("%s: %d, want %d", s.name, resp.StatusCode, s.want)
		}
	}
	if resp := a.do("GET", "/v1/requests/"+gdpr+"/clock", agentKey, "", "", &c); resp.StatusCode != http.StatusOK {
		t.Fatalf("clock: %d", resp.StatusCode)
	}
	if c.Paused || len(c.Pauses) != 1 || c.Pauses[0].ResumedAt == nil || c.Pauses[0].Reason != "asked for a utility bill" || c.DueAt.Before(c.FirstDueAt) {
		t.Errorf("gdpr clock after a pause: %+v", c)
	}
	trail := a.kinds(gdpr)
	if !slices.Contains(trail, "clock_paused") || !slices.Contains(trail, "clock_resumed") {
		t.Errorf("audit trail %v lacks the pause and the resume", trail)
	}
	if resp := a.do("POST", "/v1/requests/not-an-id/pause", agentKey, "application/json", `{"reason":"x"}`, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("pause an unknown request: %d, want 404", resp.StatusCode)
	}
}

// TestClosedRequestClockRefusals: pausing, resuming or extending a closed
// request is refused with words that say why, not as a race.
func TestClosedRequestClockRefusals(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	id := a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	a.move(id, dsr.StatusVerified, dsr.StatusCancelled)
	tests := []struct{ path, body, want string }{
		{"pause", `{"reason":"asked for ID"}`, "The request is cancelled: its clock no longer runs."},
		{"resume", ``, "The request is cancelled: its clock no longer runs."},
		{"extend", `{"reason":"complex"}`, "The request is cancelled: its clock no longer runs."},
	}
	for _, tt := range tests {
		ct := ""
		if tt.body != "" {
			ct = "application/json"
		}
		var p problemJSON
		if resp := a.do("POST", "/v1/requests/"+id+"/"+tt.path, agentKey, ct, tt.body, &p); resp.StatusCode != http.StatusConflict || p.Detail != tt.want {
			t.Errorf("%s a cancelled request: %d %q, want 409 %q", tt.path, resp.StatusCode, p.Detail, tt.want)
		}
	}
}

func TestAppeal(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	va := a.filed(`{"type":"deletion","regulation":"vcdpa","subject":{"email":"ada@example.com"}}`)
	if resp := a.do("POST", "/v1/requests/"+va+"/appeal", agentKey, "application/json", `{"reason":"x"}`, nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("appeal an open request: %d, want 409", resp.StatusCode)
	}
	a.move(va, dsr.StatusVerified, dsr.StatusDenied)
	if resp := a.do("POST", "/v1/requests/"+va+"/appeal", agentKey, "application/json", `{}`, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("appeal without a reason: %d, want 400", resp.StatusCode)
	}
	var v struct {
		ID       string    `json:"id"`
		Status   string    `json:"status"`
		AppealOf string    `json:"appeal_of"`
		DueAt    time.Time `json:"due_at"`
	}
	resp := a.do("POST", "/v1/requests/"+va+"/appeal", agentKey, "application/json", `{"reason":"the person sent proof of identity"}`, &v)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") != "/v1/requests/"+v.ID || v.AppealOf != va ||
		v.Status != string(dsr.StatusAwaitingApproval) || v.DueAt.Before(time.Now().AddDate(0, 0, 59)) {
		t.Fatalf("appeal: %d %+v", resp.StatusCode, v)
	}
	var c clockJSON
	if a.do("GET", "/v1/requests/"+v.ID+"/clock", agentKey, "", "", &c); c.AppealOf != va || c.Rule.Respond != dsr.AppealPeriod {
		t.Errorf("appeal clock: %+v", c)
	}
	if resp := a.do("POST", "/v1/requests/"+va+"/appeal", agentKey, "application/json", `{"reason":"again"}`, nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("second appeal: %d, want 409", resp.StatusCode)
	}
	if trail := a.kinds(va); !slices.Contains(trail, "appealed") {
		t.Errorf("audit trail of the denied request %v lacks the appeal", trail)
	}
	gdpr := a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"grace@example.com"}}`)
	a.move(gdpr, dsr.StatusVerified, dsr.StatusDenied)
	if resp := a.do("POST", "/v1/requests/"+gdpr+"/appeal", agentKey, "application/json", `{"reason":"x"}`, nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("appeal under GDPR: %d, want 409", resp.StatusCode)
	}
}

// TestPausedNotOverdue: a request whose clock is paused is not overdue,
// however far past its due date (dsr.Request.Overdue): the list says so of
// it, and of a running request as late, the opposite; the overdue filter
// selects the same.
func TestPausedNotOverdue(t *testing.T) {
	t.Parallel()
	s := setupStats(t)
	paused := s.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"grace@example.com"},"identity":{"verified":false}}`)
	running := s.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"},"identity":{"verified":false}}`)
	if resp := s.do("POST", "/v1/requests/"+paused+"/pause", agentKey, "application/json", `{"reason":"asked for a utility bill"}`, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("pause: %d", resp.StatusCode)
	}
	s.at(s.clock.Now().AddDate(1, 0, 0)) // both far past due
	type page struct {
		Items []struct {
			ID      string `json:"id"`
			Overdue bool   `json:"overdue"`
		} `json:"items"`
	}
	var all page
	if resp := s.do("GET", "/v1/requests", agentKey, "", "", &all); resp.StatusCode != http.StatusOK || len(all.Items) != 2 {
		t.Fatalf("list: %d %+v", resp.StatusCode, all)
	}
	for _, it := range all.Items {
		if want := it.ID == running; it.Overdue != want {
			t.Errorf("request %s (paused %v): overdue %v, want %v", it.ID, it.ID == paused, it.Overdue, want)
		}
	}
	var late page
	if resp := s.do("GET", "/v1/requests?overdue=true", agentKey, "", "", &late); resp.StatusCode != http.StatusOK ||
		len(late.Items) != 1 || late.Items[0].ID != running || !late.Items[0].Overdue {
		t.Errorf("overdue=true: %d %+v, want only %s", resp.StatusCode, late, running)
	}
}
