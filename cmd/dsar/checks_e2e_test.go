package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/webhook"
)

// TestDeadlineChecksEndToEnd runs the binary with the checks on a
// one-second cron: a request past its due date is escalated once, one due
// in three days gets its 7-day reminder once, and both alerts reach the
// escalation webhook signed; the overdue one shows in /metrics and in the
// compliance report.
func TestDeadlineChecksEndToEnd(t *testing.T) {
	const secret = "a-webhook-secret-of-some-length"
	var mu sync.Mutex
	var alerts []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := webhook.Verify(r.Header, body, time.Now(), 0, webhook.Secret(secret)); err != nil {
			t.Errorf("webhook: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var a map[string]any
		if err := json.Unmarshal(body, &a); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		alerts = append(alerts, a)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)

	r := testenv.RedisServer(t)
	env := append(baseEnv(t, t.TempDir(), r.Addr, testenv.Queue(t, r), testenv.Name("e2e")),
		"DSAR_CRON_ESCALATION=@every 1s", "DSAR_CRON_REMINDERS=@every 1s",
		"DSAR_ESCALATION_WEBHOOK_URL="+hook.URL, "DSAR_ESCALATION_WEBHOOK_SECRET="+secret)
	p := startDSAR(t, env, "dev")

	// Deletions wait for approval by default, so both stay open.
	fileAt := func(daysAgo int, email string) string {
		var v struct {
			ID string `json:"id"`
		}
		at := time.Now().UTC().AddDate(0, 0, -daysAgo).Format(time.RFC3339)
		body := fmt.Sprintf(`{"type":"deletion","regulation":"ccpa","received_at":%q,"subject":{"email":%q}}`, at, email)
		if code := p.call("POST", "/v1/requests", body, &v); code != http.StatusAccepted {
			t.Fatalf("file: %d", code)
		}
		return v.ID
	}
	overdue := fileAt(50, "ada@example.com") // due 5 days ago
	soon := fileAt(42, "grace@example.com")  // due in 3 days

	byEvent := func() map[string][]map[string]any {
		mu.Lock()
		defer mu.Unlock()
		out := map[string][]map[string]any{}
		for _, a := range alerts {
			out[fmt.Sprint(a["event"])] = append(out[fmt.Sprint(a["event"])], a)
		}
		return out
	}
	deadline := time.Now().Add(time.Minute)
	for got := byEvent(); len(got["overdue"]) == 0 || len(got["reminder"]) == 0; got = byEvent() {
		if time.Now().After(deadline) {
			t.Fatalf("alerts after a minute: %v\n%s", got, p.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // three more runs of each check
	got := byEvent()
	if len(got["overdue"]) != 1 || got["overdue"][0]["request_id"] != overdue {
		t.Errorf("overdue alerts: %v, want one for %s", got["overdue"], overdue)
	}
	if len(got["reminder"]) != 1 || got["reminder"][0]["request_id"] != soon || got["reminder"][0]["days_before_due"] != float64(7) {
		t.Errorf("reminders: %v, want one 7-day reminder for %s", got["reminder"], soon)
	}
	var v struct {
		OverdueAt *time.Time `json:"overdue_at"`
	}
	if code := p.call("GET", "/v1/requests/"+overdue, "", &v); code != http.StatusOK || v.OverdueAt == nil {
		t.Errorf("overdue request: %d, overdue_at %v", code, v.OverdueAt)
	}
	var trail struct {
		Events []struct {
			Kind string `json:"kind"`
		} `json:"events"`
	}
	p.call("GET", "/v1/requests/"+overdue+"/audit", "", &trail)
	escalated := 0
	for _, e := range trail.Events {
		if e.Kind == "escalated" {
			escalated++
		}
	}
	if escalated != 1 {
		t.Errorf("audit trail has %d escalations, want 1: %+v", escalated, trail.Events)
	}

	// The overdue request shows in the metrics and in the compliance report.
	resp, err := p.client.Get(p.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `dsar_requests_overdue{regulation="ccpa",type="deletion"} 1`; !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %s", want)
	}
	var sum dsr.Summary
	from, to := time.Now().UTC().AddDate(0, 0, -60).Format(time.DateOnly), time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	if code := p.call("GET", "/v1/reports/summary?from="+from+"&to="+to, "", &sum); code != http.StatusOK ||
		sum.Total.Received != 2 || sum.Total.Open != 2 || sum.Total.Overdue != 1 {
		t.Errorf("summary: %d, total %+v; want 2 received, 2 open, 1 overdue", code, sum.Total)
	}
	p.stop()
	if strings.Contains(p.stderr.String(), "@example.com") {
		t.Errorf("logs hold an email address:\n%s", p.stderr)
	}
}
