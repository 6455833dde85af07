package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/internal/webhook"
)

var (
	resumeSecret, _ = webhook.ParseSecret("the hook's secret, 16+ bytes")
	otherSecret, _  = webhook.ParseSecret("another secret, 16+ bytes")
)

// held stores a verified request for email held by the pre-fan-out hook
// for an hour.
func (a *api) held(email string) *dsr.Request {
	a.t.Helper()
	ctx := context.Background()
	r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeDeletion, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "tester",
		Status: dsr.StatusVerified, ReceivedAt: time.Now(),
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: email, Source: dsr.SourceSubject}}}, a.index)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.store.CreateRequest(ctx, r); err != nil {
		a.t.Fatal(err)
	}
	if _, err := a.store.HoldForHook(ctx, r.ID, time.Now().Add(time.Hour), nil, nil); err != nil {
		a.t.Fatal(err)
	}
	return r
}

// resume POSTs body to the resume of request id with headers h.
func (a *api) resume(id string, h http.Header, body string) (int, map[string]any) {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.url+"/v1/hooks/resume/"+id, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func signed(k webhook.Secret, id string, at time.Time, body string) http.Header {
	h := http.Header{}
	k.SignHeaders(h, id, at, []byte(body))
	return h
}

// TestHookResumeAttacks: a resume changes a held request only when it is
// signed with the hook's secret, fresh, names the request of its path and
// carries valid identities; every other call is refused with the problem
// that says why, and the request stays held with its identities.
func TestHookResumeAttacks(t *testing.T) {
	t.Parallel()
	a := setupWith(t, false, func(d *handlers.Deps) { d.HookSecret = resumeSecret })
	r := a.held("ada@example.com")
	other := a.held("grace@example.com")
	now := time.Now()
	good := `{"request_id":"` + r.ID + `","add_identities":[{"kind":"customer_id","value":"cus_1042"}]}`
	forOther := `{"request_id":"` + other.ID + `"}`
	tests := []struct {
		name   string
		id     string
		h      http.Header
		body   string
		status int
		typ    string
	}{
		{"unsigned", r.ID, http.Header{}, good, 401, "urn:dsar:problem:bad-signature"},
		{"forged: another key", r.ID, signed(otherSecret, "msg_1", now, good), good, 401, "urn:dsar:problem:bad-signature"},
		{"forged: body changed", r.ID, signed(resumeSecret, "msg_1", now, `{"request_id":"`+r.ID+`"}`), good, 401, "urn:dsar:problem:bad-signature"},
		{"stale", r.ID, signed(resumeSecret, "msg_1", now.Add(-10*time.Minute), good), good, 401, "urn:dsar:problem:bad-signature"},
		{"from the future", r.ID, signed(resumeSecret, "msg_1", now.Add(10*time.Minute), good), good, 401, "urn:dsar:problem:bad-signature"},
		{"another request's resume", r.ID, signed(resumeSecret, "msg_1", now, forOther), forOther, 401, "urn:dsar:problem:bad-signature"},
		{"junk identities", r.ID, signed(resumeSecret, "msg_1", now, `{"request_id":"`+r.ID+`","add_identities":[{"kind":"ssn","value":"078-05-1120"},{"kind":"email","value":"@"}]}`),
			`{"request_id":"` + r.ID + `","add_identities":[{"kind":"ssn","value":"078-05-1120"},{"kind":"email","value":"@"}]}`, 400, "urn:dsar:problem:validation"},
		{"unknown field", r.ID, signed(resumeSecret, "msg_1", now, `{"request_id":"`+r.ID+`","hold":false}`), `{"request_id":"` + r.ID + `","hold":false}`, 400, "urn:dsar:problem:malformed-body"},
	}
	for _, tt := range tests {
		status, p := a.resume(tt.id, tt.h, tt.body)
		if status != tt.status || p["type"] != tt.typ {
			t.Errorf("%s: %d %v; want %d %s", tt.name, status, p, tt.status, tt.typ)
		}
		if strings.Contains(mustMarshal(t, p), "078-05") {
			t.Errorf("%s: the problem quotes the body: %v", tt.name, p)
		}
	}
	for _, id := range []string{r.ID, other.ID} {
		got, err := a.store.Request(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !got.HookHold.Holding() || len(got.Identities) != 1 {
			t.Errorf("after the attacks: hold %+v, identities %d", got.HookHold, len(got.Identities))
		}
	}
	if slices.Contains(a.kinds(r.ID), "hook_pre_resumed") {
		t.Error("a refused resume was audited as one")
	}
	// An agent sees why the request waits: the hold, until when.
	var view struct {
		Status   string         `json:"status"`
		HookHold map[string]any `json:"hook_hold"`
	}
	if resp := a.do("GET", "/v1/requests/"+r.ID, agentKey, "", "", &view); resp.StatusCode != http.StatusOK ||
		view.Status != "verified" || view.HookHold["until"] == nil || view.HookHold["resumed_at"] != nil {
		t.Errorf("GET a held request: %d %+v; want verified with hook_hold.until and no resumed_at", resp.StatusCode, view)
	}

	// The good one, then its replay inside the window.
	status, body := a.resume(r.ID, signed(resumeSecret, "msg_good", now, good), good)
	if status != http.StatusOK || body["status"] != "verified" || body["identities"] != float64(2) {
		t.Fatalf("good resume: %d %v", status, body)
	}
	status, body = a.resume(r.ID, signed(resumeSecret, "msg_good", now, good), good)
	if status != http.StatusConflict || body["type"] != "urn:dsar:problem:conflict" {
		t.Errorf("replayed resume: %d %v; want 409", status, body)
	}
	got, err := a.store.Request(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.HookHold.Holding() || got.HookHold.ResumeID != "msg_good" ||
		!slices.Contains(got.Identities, dsr.Identity{Kind: dsr.KindCustomerID, Value: "cus_1042", Source: dsr.SourceHook}) {
		t.Errorf("after the resume: %+v, %v", got.HookHold, got.Identities)
	}
	if !slices.Contains(a.kinds(r.ID), "hook_pre_resumed") {
		t.Errorf("audit %v lacks hook_pre_resumed", a.kinds(r.ID))
	}

	// A request never held, and one that does not exist.
	plain := a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"lin@example.com"}}`)
	b := `{"request_id":"` + plain + `"}`
	if status, body := a.resume(plain, signed(resumeSecret, "msg_p", now, b), b); status != http.StatusConflict {
		t.Errorf("resume of a request not held: %d %v; want 409", status, body)
	}
	const missing = "01928c4e-7a1b-7cde-8f01-23456789abcd"
	b = `{"request_id":"` + missing + `"}`
	if status, body := a.resume(missing, signed(resumeSecret, "msg_m", now, b), b); status != http.StatusNotFound {
		t.Errorf("resume of no request: %d %v; want 404", status, body)
	}
}

// TestHookResumeUnconfigured: without DSAR_HOOK_SECRET no resume is taken,
// however it is signed.
func TestHookResumeUnconfigured(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	r := a.held("ada@example.com")
	body := `{"request_id":"` + r.ID + `"}`
	if status, p := a.resume(r.ID, signed(resumeSecret, "msg_1", time.Now(), body), body); status != http.StatusNotFound {
		t.Errorf("resume without a secret: %d %v; want 404", status, p)
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHookResumeSecretChange: while DSAR_HOOK_SECRET changes, a resume
// signed with the new secret or the previous one is accepted, one signed
// with any other is not.
func TestHookResumeSecretChange(t *testing.T) {
	t.Parallel()
	newSecret, err := webhook.ParseSecret("the new hook secret, 16+ bytes")
	if err != nil {
		t.Fatal(err)
	}
	a := setupWith(t, false, func(d *handlers.Deps) { d.HookSecret, d.HookPreviousSecret = newSecret, resumeSecret })
	now := time.Now()
	for _, tt := range []struct {
		name   string
		secret webhook.Secret
		status int
	}{
		{"the previous secret", resumeSecret, http.StatusOK},
		{"the new secret", newSecret, http.StatusOK},
		{"another secret", otherSecret, http.StatusUnauthorized},
	} {
		r := a.held(strings.ReplaceAll(tt.name, " ", ".") + "@example.com")
		body := `{"request_id":"` + r.ID + `"}`
		if status, p := a.resume(r.ID, signed(tt.secret, "msg_"+r.ID, now, body), body); status != tt.status {
			t.Errorf("resume signed with %s: %d %v; want %d", tt.name, status, p, tt.status)
		}
	}
}
