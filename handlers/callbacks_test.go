package handlers_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/opendsr"
	"github.com/dsar-project/dsar/connectors/webhook"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	sw "github.com/dsar-project/dsar/internal/webhook"
)

const (
	crmSecret      = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	strangerSecret = "whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA=="
)

// shop is a connector that takes no callbacks.
type shop struct{}

func (shop) Name() string { return "shop" }

// callbackAPI serves the API with a webhook connector "crm" and a
// connector "shop" that takes no callbacks.
func callbackAPI(t *testing.T) *api {
	t.Helper()
	reg := connectors.NewRegistry()
	crm, err := webhook.New("crm", webhook.Spec{URL: "https://crm.example.com/dsar", Secret: crmSecret})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []connectors.Connector{crm, shop{}} {
		if err := reg.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	return setupWith(t, false, func(d *handlers.Deps) { d.Callbacks = reg })
}

// waiting stores a job of connector for action on request id, waiting on
// handle, and returns its id.
func (a *api) waiting(id, connector string, action dsr.Action, handle string) string {
	a.t.Helper()
	ctx := context.Background()
	j := dsr.NewJob(id, connector, action, time.Now())
	if err := a.store.CreateJobs(ctx, []dsr.Job{j}); err != nil {
		a.t.Fatal(err)
	}
	if handle == "" {
		return j.ID
	}
	claimed, err := a.store.ClaimJob(ctx, j.ID, time.Minute)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.store.FinishJob(ctx, claimed, dsr.Outcome{Status: dsr.JobWaiting, Handle: handle, PollAt: time.Now().Add(time.Hour), WaitUntil: time.Now().Add(time.Hour)}); err != nil {
		a.t.Fatal(err)
	}
	return j.ID
}

// callback POSTs body to the callback of job, signed with secret at ts
// (unsigned when secret is empty).
func (a *api) callback(job, secret string, ts time.Time, body string) (*http.Response, []byte) {
	a.t.Helper()
	req, err := http.NewRequest("POST", a.url+"/v1/callbacks/"+url.PathEscape(job), strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		k, err := sw.ParseSecret(secret)
		if err != nil {
			a.t.Fatal(err)
		}
		k.SignHeaders(req.Header, "msg_"+ts.Format("150405.000000000"), ts, []byte(body))
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp, b.Bytes()
}

// TestCallbacks: a signed callback for the handle a job waits on is stored
// as its answer and the job queued at once; a callback for no job, for a
// job of a connector that takes none, badly signed, stale, not valid, for
// another handle, for a job not waiting, or answered already is refused
// and changes nothing.
func TestCallbacks(t *testing.T) {
	t.Parallel()
	a := callbackAPI(t)
	id := a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	job := a.waiting(id, "crm", dsr.ActionExport, "op-7")
	shopJob := a.waiting(id, "shop", dsr.ActionExport, "op-7")
	pending := a.waiting(id, "crm", dsr.ActionErase, "")
	good := `{"handle":"op-7","collections":[{"name":"customers","records":1}],"export":{"customers":[{"email":"ada@example.com"}]}}`
	now := time.Now()
	before := a.kinds(id)
	insp := asynq.NewInspector(a.redis)
	t.Cleanup(func() { _ = insp.Close() })

	refused := []struct {
		name   string
		job    string
		secret string
		at     time.Time
		body   string
		want   int
		title  string
	}{
		{"unknown job", id + ":crm:opt_out", crmSecret, now, good, 404, ""},
		{"a job of a connector that takes no callbacks", shopJob, crmSecret, now, good, 404, ""},
		{"unsigned", job, "", now, good, 401, ""},
		{"signed with another secret", job, strangerSecret, now, good, 401, ""},
		{"stale", job, crmSecret, now.Add(-10 * time.Minute), good, 401, ""},
		{"not an answer", job, crmSecret, now, `{"handle":"op-7","collections":[{"name":"customers"}]}`, 400, ""},
		{"another handle", job, crmSecret, now, strings.Replace(good, "op-7", "op-8", 1), 409, "Not waiting"},
		{"a job not waiting", pending, crmSecret, now, `{"handle":"op-7","collections":[]}`, 409, "Not waiting"},
	}
	for _, tt := range refused {
		resp, body := a.callback(tt.job, tt.secret, tt.at, tt.body)
		if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.title) || resp.Header.Get("Content-Type") != "application/problem+json" || (tt.want == 401 && !strings.Contains(string(body), "urn:dsar:problem:bad-signature")) {
			t.Errorf("%s: %d %s; want %d %s problem", tt.name, resp.StatusCode, body, tt.want, tt.title)
		}
		if strings.Contains(string(body), "ada@example.com") {
			t.Errorf("%s: the problem quotes the body: %s", tt.name, body)
		}
	}
	for _, j := range []string{job, shopJob, pending} {
		got, err := a.store.Job(context.Background(), j)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Answer) != 0 {
			t.Errorf("refused callbacks stored answer %q on %s", got.Answer, j)
		}
		if _, err := insp.GetTaskInfo(a.queue, j); err == nil {
			t.Errorf("refused callbacks queued job %s", j)
		}
	}
	if got := a.kinds(id); len(got) != len(before) {
		t.Errorf("refused callbacks were audited: %v", got[len(before):])
	}

	resp, body := a.callback(job, crmSecret, now, good)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a good callback: %d %s", resp.StatusCode, body)
	}
	got, err := a.store.Job(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Answer) != good {
		t.Errorf("stored answer %q; want the callback's body", got.Answer)
	}
	if _, err := insp.GetTaskInfo(a.queue, job); err != nil {
		t.Errorf("the answered job is not queued: %v", err)
	}
	if kinds := a.kinds(id); kinds[len(kinds)-1] != "job_answered" {
		t.Errorf("audit %v; want job_answered last", kinds)
	}
	resp, body = a.callback(job, crmSecret, now.Add(time.Second), good)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "Already answered") {
		t.Errorf("a second callback: %d %s; want 409 Already answered", resp.StatusCode, body)
	}
}

// TestCallbacksWithoutConnectors: an API given no connectors (dsar serve
// without a connectors file) answers every callback 404.
func TestCallbacksWithoutConnectors(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	id := a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	job := a.waiting(id, "crm", dsr.ActionExport, "op-7")
	resp, body := a.callback(job, crmSecret, time.Now(), `{"handle":"op-7","collections":[]}`)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("callback without connectors: %d %s; want 404", resp.StatusCode, body)
	}
}

// TestCallbackSystemUnreachable: a callback for an opendsr job whose
// processor cannot be reached (for the certificate it is checked with) is
// answered 503 with Retry-After, and nothing is stored; it is a warning,
// not an error, in the log, since anyone may send callbacks.
func TestCallbackSystemUnreachable(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	vendor, err := opendsr.New("vendor", opendsr.Spec{URL: deadURL + "/opendsr/v2", Token: "controller-token-0123456789", Domain: "processor.test",
		AllowInsecure: true, AllowPrivate: true, CallbackURL: "https://dsar.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	reg := connectors.NewRegistry()
	if err := reg.Add(vendor); err != nil {
		t.Fatal(err)
	}
	a := setupWith(t, false, func(d *handlers.Deps) { d.Callbacks = reg })
	id := a.filed(`{"type":"deletion","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	job := a.waiting(id, "vendor", dsr.ActionErase, "0b7c2d4e-6f81-4a93-8b05-c1d2e3f40516")
	body := `{"controller_id":"acme","expected_completion_time":"2026-12-31T00:00:00Z","status_callback_url":"https://dsar.example.com/v1/callbacks/` +
		url.PathEscape(job) + `","subject_request_id":"0b7c2d4e-6f81-4a93-8b05-c1d2e3f40516","request_status":"completed"}`
	req, _ := http.NewRequest("POST", a.url+"/v1/callbacks/"+url.PathEscape(job), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-OpenDSR-Processor-Domain", "processor.test")
	req.Header.Set("X-OpenDSR-Signature", "c2lnbmF0dXJl")
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "system-unreachable") {
		t.Fatalf("a callback while the processor is unreachable: %d %q %s; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if j, err := a.store.Job(context.Background(), job); err != nil || len(j.Answer) != 0 {
		t.Errorf("the job holds an answer (%v)", err)
	}
}
