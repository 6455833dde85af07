package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
)

type workflowView struct {
	ID                 string          `json:"id"`
	Status             string          `json:"status"`
	DueAt              time.Time       `json:"due_at"`
	ReceivedAt         time.Time       `json:"received_at"`
	Channel            string          `json:"channel"`
	Note               string          `json:"note"`
	VerificationMethod string          `json:"verification_method"`
	ApprovedBy         string          `json:"approved_by"`
	AssignedTo         string          `json:"assigned_to"`
	Exceptions         []dsr.Exception `json:"exceptions"`
	Extension          *struct {
		Reason string    `json:"reason"`
		From   time.Time `json:"from"`
	} `json:"extension"`
	History []struct {
		To     string `json:"to"`
		Actor  string `json:"actor"`
		Reason string `json:"reason"`
	} `json:"history"`
}

func TestFilingOnBehalf(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	received := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Second)
	var v workflowView
	resp := a.do("POST", "/v1/requests", agentKey, "application/json", fmt.Sprintf(
		`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"},"channel":"phone","note":"called the hotline",
		  "received_at":%q,"identity":{"verified":true,"method":"answered account security questions"}}`, received.Format(time.RFC3339)), &v)
	if resp.StatusCode != 202 {
		t.Fatalf("file: %d", resp.StatusCode)
	}
	if v.Channel != "phone" || v.Note != "called the hotline" || v.VerificationMethod != "answered account security questions" ||
		!v.ReceivedAt.Equal(received) || !v.DueAt.Equal(dsr.AddMonths(received, 1)) || v.Status != "verified" {
		t.Errorf("filed on behalf: %+v", v)
	}
	// The person is sent the portal's verification instead.
	resp = a.do("POST", "/v1/requests", agentKey, "application/json",
		`{"type":"deletion","regulation":"ccpa","subject":{"email":"grace@example.com"},"channel":"letter","identity":{"verified":false}}`, &v)
	if resp.StatusCode != 202 || v.Status != "verifying" {
		t.Errorf("file with verification: %d %s", resp.StatusCode, v.Status)
	}
	tests := []struct {
		name, body string
		fields     []string
	}{
		{"future receipt", fmt.Sprintf(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"},"received_at":%q}`, time.Now().Add(time.Hour).Format(time.RFC3339)), []string{"received_at"}},
		{"unknown channel", `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"},"channel":"pigeon"}`, []string{"channel"}},
		{"verified without a method", `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"},"identity":{"verified":true}}`, []string{"identity.method"}},
		{"verification without an email", `{"type":"access","regulation":"gdpr","subject":{"customer_id":"c1"},"identity":{"verified":false}}`, []string{"subject.email"}},
	}
	for _, tt := range tests {
		var p problemJSON
		if resp := a.do("POST", "/v1/requests", agentKey, "application/json", tt.body, &p); resp.StatusCode != 400 || strings.Join(p.fields(), ",") != strings.Join(tt.fields, ",") {
			t.Errorf("%s: %d %v, want 400 naming %v", tt.name, resp.StatusCode, p.fields(), tt.fields)
		}
	}
}

// TestActions walks every agent action, and shows each is a conditional
// change: of two at once, one wins and the other gets 409.
func TestActions(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	ctx := context.Background()
	var v workflowView
	post := func(path, body string) int {
		t.Helper()
		ct := ""
		if body != "" {
			ct = "application/json"
		}
		v = workflowView{}
		var raw json.RawMessage
		code := a.do("POST", path, agentKey, ct, body, &raw).StatusCode
		if code < 300 {
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
		}
		return code
	}

	// Approve: twice at once, one wins.
	id := a.filed(`{"type":"deletion","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	a.move(id, dsr.StatusVerified, dsr.StatusAwaitingApproval)
	codes := atOnce(2, func() int {
		req, _ := http.NewRequest("POST", a.url+"/v1/requests/"+id+"/approve", nil)
		req.Header.Set("Authorization", "Bearer "+agentKey)
		resp, err := a.client.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	})
	if won := codes[0] == 200 && codes[1] == 409 || codes[0] == 409 && codes[1] == 200; !won {
		t.Errorf("two approvals at once: %v, want one 200 and one 409", codes)
	}
	r, _ := a.store.Request(ctx, id)
	if r.Status != dsr.StatusVerified || r.ApprovedBy != "desk" {
		t.Errorf("approved: %s by %q", r.Status, r.ApprovedBy)
	}

	// Deny needs a reason, and tells the person.
	id = a.filed(`{"type":"access","regulation":"ccpa","subject":{"email":"grace@example.com"}}`)
	if code := post("/v1/requests/"+id+"/deny", `{}`); code != 400 {
		t.Errorf("deny without a reason: %d", code)
	}
	if code := post("/v1/requests/"+id+"/deny", `{"reason":"not theirs","basis":"because"}`); code != 400 {
		t.Errorf("deny with an unknown basis: %d, want 400", code)
	}
	if code := post("/v1/requests/"+id+"/deny", `{"reason":"manifestly unfounded: third identical request this month"}`); code != 200 || v.Status != "denied" {
		t.Errorf("deny: %d %s", code, v.Status)
	}
	if r, _ := a.store.Request(ctx, id); r.DenialBasis != dsr.DeniedOther {
		t.Errorf("denial basis %q, want other by default", r.DenialBasis)
	}
	other := a.filed(`{"type":"access","regulation":"ccpa","subject":{"email":"alan@example.com"}}`)
	if code := post("/v1/requests/"+other+"/deny", `{"reason":"we could not verify you","basis":"unverifiable"}`); code != 200 {
		t.Errorf("deny with a basis: %d", code)
	}
	if r, _ := a.store.Request(ctx, other); r.DenialBasis != dsr.DeniedUnverifiable {
		t.Errorf("denial basis %q, want unverifiable", r.DenialBasis)
	}
	if code := post("/v1/requests/"+id+"/deny", `{"reason":"again"}`); code != 409 {
		t.Errorf("deny a denied request: %d, want 409", code)
	}
	r, _ = a.store.Request(ctx, id)
	if !r.Notify || !slices.Contains(r.PendingNotices, dsr.NoticeDenied) {
		t.Errorf("denial notice: notify %v, pending %v; want the person told", r.Notify, r.PendingNotices)
	}

	// Cancel, body optional.
	id = a.filed(`{"type":"opt_out","regulation":"ccpa","subject":{"email":"alan@example.com"}}`)
	if code := post("/v1/requests/"+id+"/cancel", ""); code != 200 || v.Status != "cancelled" {
		t.Errorf("cancel: %d %s", code, v.Status)
	}

	// Extend: once, within the regulation's limit.
	id = a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"alan@example.com"}}`)
	before, _ := a.store.Request(ctx, id)
	if code := post("/v1/requests/"+id+"/extend", `{"reason":"data spread over 14 systems"}`); code != 200 ||
		v.Extension == nil || !v.DueAt.Equal(dsr.AddMonths(before.DueAt, 2)) || !v.Extension.From.Equal(before.DueAt) {
		t.Errorf("extend GDPR: %d %+v (due %s)", code, v.Extension, v.DueAt)
	}
	if code := post("/v1/requests/"+id+"/extend", `{"reason":"more"}`); code != 409 {
		t.Errorf("a second extension: %d, want 409", code)
	}
	lgpd := a.filed(`{"type":"access","regulation":"lgpd","subject":{"email":"alan@example.com"}}`)
	if code := post("/v1/requests/"+lgpd+"/extend", `{"reason":"x"}`); code != 409 {
		t.Errorf("extend under LGPD: %d, want 409", code)
	}

	// Retry and close a request that needs attention.
	id = a.filed(`{"type":"deletion","regulation":"gdpr","subject":{"email":"katherine@example.com"},"channel":"email"}`)
	a.move(id, dsr.StatusVerified, dsr.StatusInProgress)
	job := dsr.NewJob(id, "crm", dsr.ActionErase, time.Now())
	if err := a.store.CreateJobs(ctx, []dsr.Job{job}); err != nil {
		t.Fatal(err)
	}
	if err := a.store.MarkFannedOut(ctx, id); err != nil {
		t.Fatal(err)
	}
	fail := func() {
		t.Helper()
		c, err := a.store.ClaimJob(ctx, job.ID, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.store.FinishJob(ctx, c, dsr.Outcome{Status: dsr.JobFailed, Error: "crm down"}); err != nil {
			t.Fatal(err)
		}
		if to, err := a.store.Settle(ctx, id, "test"); err != nil || to != dsr.StatusNeedsAttention {
			t.Fatalf("settle: %s %v", to, err)
		}
	}
	fail()
	if code := post("/v1/requests/"+id+"/retry", ""); code != 200 || v.Status != "in_progress" {
		t.Errorf("retry: %d %s", code, v.Status)
	}
	j, _ := a.store.Job(ctx, job.ID)
	if j.Status != dsr.JobPending || j.Attempts != 0 {
		t.Errorf("retried job: %s after %d attempts", j.Status, j.Attempts)
	}
	if code := post("/v1/requests/"+id+"/retry", ""); code != 409 {
		t.Errorf("retry while in progress: %d, want 409", code)
	}
	fail()
	if code := post("/v1/requests/"+id+"/close", `{"reason":"crm kept under legal hold","exceptions":[{"connector":"crm","basis":"tax law: 10 years"}]}`); code != 200 ||
		v.Status != "completed" || len(v.Exceptions) != 1 || v.Exceptions[0].Basis != "tax law: 10 years" {
		t.Errorf("close: %d %+v", code, v)
	}
	if code := post("/v1/requests/"+id+"/close", `{"reason":"again"}`); code != 409 {
		t.Errorf("close twice: %d, want 409", code)
	}

	// Assign, and list by assignee.
	if code := post("/v1/requests/"+lgpd+"/assign", `{"agent":"desk"}`); code != 200 || v.AssignedTo != "desk" {
		t.Errorf("assign: %d %q", code, v.AssignedTo)
	}
	if code := post("/v1/requests/"+lgpd+"/assign", `{"agent":"audit"}`); code != 400 {
		t.Errorf("assign to an auditor: %d, want 400", code)
	}
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	a.do("GET", "/v1/requests?assigned_to=desk", auditorKey, "", "", &page)
	if len(page.Items) != 1 || page.Items[0].ID != lgpd {
		t.Errorf("list by assignee: %+v", page.Items)
	}
}

func TestDuplicatesAndBulk(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	first := a.filed(`{"type":"deletion","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	var dup struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	a.do("POST", "/v1/requests", agentKey, "application/json", `{"type":"deletion","regulation":"ccpa","subject":{"phone":"+44 20 7946 0958","email":"ADA@example.com"}}`, &dup)
	if dup.Status != "duplicate" {
		t.Fatalf("same type and identity: %s, want duplicate", dup.Status)
	}
	r, _ := a.store.Request(context.Background(), dup.ID)
	if r.DuplicateOf != first {
		t.Errorf("duplicate of %q, want %q", r.DuplicateOf, first)
	}
	if other := a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`); other == "" {
		t.Error("another type was refused")
	}
	var v workflowView
	if resp := a.do("POST", "/v1/requests/"+dup.ID+"/unlink", agentKey, "", "", &v); resp.StatusCode != 200 || v.Status != "verified" {
		t.Errorf("unlink: %d %s", resp.StatusCode, v.Status)
	}
	if resp := a.do("POST", "/v1/requests/"+dup.ID+"/unlink", agentKey, "", "", nil); resp.StatusCode != 409 {
		t.Errorf("unlink twice: %d, want 409", resp.StatusCode)
	}

	// Bulk: each item on its own.
	items := []string{
		`{"type":"access","regulation":"gdpr","subject":{"email":"b1@example.com"}}`,
		`{"type":"access","regulation":"nowhere","subject":{"email":"b2@example.com"}}`,
		`{"type":"opt_out","regulation":"ccpa","subject":{"email":"b3@example.com"},"colour":"red"}`,
		`"not an object"`,
		`{"type":"deletion","regulation":"ccpa","subject":{"email":"b4@example.com"},"channel":"letter"}`,
	}
	var out bulkOut
	resp := a.do("POST", "/v1/requests/bulk", agentKey, "application/json", `{"requests":[`+strings.Join(items, ",")+`]}`, &out)
	if resp.StatusCode != 200 || out.Accepted != 2 || out.Rejected != 3 || len(out.Results) != 5 {
		t.Fatalf("bulk: %d %+v", resp.StatusCode, out)
	}
	wantStatus := []int{202, 400, 400, 400, 202}
	for i, res := range out.Results {
		if res.Index != i || res.Status != wantStatus[i] || (res.Status == 202) != (res.Request != nil) {
			t.Errorf("item %d: %+v, want %d", i, res, wantStatus[i])
		}
	}
	if f := out.Results[1].Problem.fields(); len(f) != 1 || f[0] != "regulation" {
		t.Errorf("item 1 names %v, want regulation", f)
	}
	if f := out.Results[2].Problem.fields(); len(f) != 1 || f[0] != "colour" {
		t.Errorf("item 2 names %v, want colour", f)
	}
	tooMany := `{"requests":[` + strings.TrimSuffix(strings.Repeat(items[0]+",", 1001), ",") + `]}`
	if resp := a.do("POST", "/v1/requests/bulk", agentKey, "application/json", tooMany, nil); resp.StatusCode != 400 {
		t.Errorf("1001 items: %d, want 400", resp.StatusCode)
	}
}

func TestReport(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	done := a.seedCompleted(dsr.TypeAccess, dsr.StatusCompleted, 3)
	var rep struct {
		Request struct {
			ID            string   `json:"id"`
			IdentityKinds []string `json:"identity_kinds"`
		} `json:"request"`
		Response struct {
			Nature        string `json:"nature"`
			OnTime        *bool  `json:"on_time"`
			DaysToRespond *int   `json:"days_to_respond"`
		} `json:"response"`
		Systems []struct {
			Connector string `json:"connector"`
			Records   int64  `json:"records"`
		} `json:"systems"`
	}
	resp := a.do("GET", "/v1/requests/"+done.ID+"/report", auditorKey, "", "", &rep)
	if resp.StatusCode != 200 || rep.Response.Nature != "completed" || rep.Response.OnTime == nil || !*rep.Response.OnTime ||
		len(rep.Systems) != 1 || rep.Systems[0].Records != 3 || strings.Join(rep.Request.IdentityKinds, ",") != "email" {
		t.Errorf("report: %d %+v", resp.StatusCode, rep)
	}
	hr, page := a.send("GET", "/v1/requests/"+done.ID+"/report?format=html", auditorKey, "", "")
	if hr.StatusCode != 200 || !strings.HasPrefix(hr.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(page), done.ID) ||
		strings.Contains(string(page), "ada@example.com") {
		t.Errorf("html report: %d %s, holds the id %v, holds the email %v", hr.StatusCode, hr.Header.Get("Content-Type"),
			strings.Contains(string(page), done.ID), strings.Contains(string(page), "ada@example.com"))
	}
	raw, _ := json.Marshal(rep)
	if strings.Contains(string(raw), "ada@") {
		t.Error("the report names the person")
	}
}

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	id := a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	if code := a.do("POST", "/v1/requests/"+id+"/extend", agentKey, "application/json", `{"reason":"many systems"}`, nil).StatusCode; code != 200 {
		t.Fatalf("extend: %d", code)
	}
	if code := a.do("POST", "/v1/requests/"+id+"/cancel", agentKey, "", "", nil).StatusCode; code != 200 {
		t.Fatalf("cancel: %d", code)
	}
	type view struct {
		Verified bool   `json:"verified"`
		BrokenAt int    `json:"broken_at"`
		Problem  string `json:"problem"`
		Events   []struct {
			Seq   int               `json:"seq"`
			Actor string            `json:"actor"`
			Kind  string            `json:"kind"`
			Data  map[string]string `json:"data"`
		} `json:"events"`
	}
	var v view
	if resp := a.do("GET", "/v1/requests/"+id+"/audit", auditorKey, "", "", &v); resp.StatusCode != 200 || !v.Verified {
		t.Fatalf("audit: %d %+v", resp.StatusCode, v)
	}
	var kinds []string
	for _, e := range v.Events {
		kinds = append(kinds, e.Kind+"/"+e.Actor)
	}
	if strings.Join(kinds, ",") != "filed/desk,extended/desk,status/desk" {
		t.Errorf("events: %v", kinds)
	}

	// Someone edits an event in the store: the chain shows where.
	a.store.TamperAudit(t, id, 2, "data.reason", "few systems")
	a.do("GET", "/v1/requests/"+id+"/audit", auditorKey, "", "", &v)
	if v.Verified || v.BrokenAt != 2 {
		t.Errorf("after an edit: verified %v at %d (%s), want broken at 2", v.Verified, v.BrokenAt, v.Problem)
	}

	// Someone deletes the last event: the rest verifies, but the history
	// says a change of status is missing.
	other := a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"grace@example.com"}}`)
	a.do("POST", "/v1/requests/"+other+"/cancel", agentKey, "", "", nil)
	a.store.DeleteAudit(t, other, 2)
	a.do("GET", "/v1/requests/"+other+"/audit", auditorKey, "", "", &v)
	if v.Verified || !strings.Contains(v.Problem, "removed") {
		t.Errorf("after deleting the last event: verified %v, %q", v.Verified, v.Problem)
	}
}

// TestRetryOfAFailedFanout: a request whose fan-out failed past its retries
// shows the error and no jobs, and an agent's retry runs the fan-out again
// (it answered 409 before: a request with no failed job could not be
// retried).
func TestRetryOfAFailedFanout(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	ctx := context.Background()
	id := a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"},"identity":{"verified":true,"method":"signed in"}}`)
	for range 2 {
		if _, err := a.store.FanoutFailed(ctx, id, "fanout: resolve identities: lookup down for [redacted]"); err != nil {
			t.Fatal(err)
		}
	}
	a.move(id, dsr.StatusVerified, dsr.StatusNeedsAttention)
	type view struct {
		Status         string `json:"status"`
		FanoutFailures int    `json:"fanout_failures"`
		FanoutError    string `json:"fanout_error"`
		Jobs           []any  `json:"jobs"`
	}
	var got view
	a.do("GET", "/v1/requests/"+id, agentKey, "", "", &got)
	want := view{Status: "needs_attention", FanoutFailures: 2, FanoutError: "fanout: resolve identities: lookup down for [redacted]", Jobs: []any{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request whose fan-out failed (-want +got):\n%s", diff)
	}
	got = view{}
	if resp := a.do("POST", "/v1/requests/"+id+"/retry", agentKey, "", "", &got); resp.StatusCode != http.StatusOK {
		t.Fatalf("retry: %d", resp.StatusCode)
	}
	want = view{Status: "verified", Jobs: []any{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after the retry (-want +got):\n%s", diff)
	}
	if last := a.lastChange(id); last.Reason != "retry of the fan-out after 2 failures" {
		t.Errorf("history: %+v", last)
	}
	if resp := a.do("POST", "/v1/requests/"+id+"/retry", agentKey, "", "", nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("retry of a verified request: %d, want 409", resp.StatusCode)
	}
}

// TestRetryWithoutConnector: a request that found no connector for its
// action needs attention, and an agent's retry (once one is configured)
// runs its fan-out again.
func TestRetryWithoutConnector(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	id := a.filed(`{"type":"opt_out","regulation":"ccpa","subject":{"email":"ada@example.com"},"identity":{"verified":true,"method":"signed in"}}`)
	a.move(id, dsr.StatusVerified, dsr.StatusInProgress)
	a.move(id, dsr.StatusInProgress, dsr.StatusNeedsAttention)
	var got struct {
		Status string `json:"status"`
	}
	if resp := a.do("POST", "/v1/requests/"+id+"/retry", agentKey, "", "", &got); resp.StatusCode != http.StatusOK {
		t.Fatalf("retry: %d, want 200", resp.StatusCode)
	}
	if got.Status != "verified" {
		t.Errorf("status after the retry: %q, want verified", got.Status)
	}
	if last := a.lastChange(id); last.Reason != "retry of the fan-out" {
		t.Errorf("history: %+v", last)
	}
}

// TestReportSaysCountsMayBeShort: a job whose first attempt was stopped
// before recording what it changed says so in the API and in the evidence.
func TestReportSaysCountsMayBeShort(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	ctx := context.Background()
	id := a.filed(`{"type":"deletion","regulation":"gdpr","subject":{"email":"ada@example.com"},"identity":{"verified":true,"method":"signed in"}}`)
	a.move(id, dsr.StatusVerified, dsr.StatusInProgress)
	job := dsr.NewJob(id, "shop", dsr.ActionErase, time.Now())
	testenv.Must(t, a.store.CreateJobs(ctx, []dsr.Job{job}))
	testenv.Must(t, a.store.MarkFannedOut(ctx, id))
	// The first attempt dies holding a lease that has run out already.
	_, err := a.store.ClaimJob(ctx, job.ID, -time.Second)
	testenv.Must(t, err)
	claimed, err := a.store.ClaimJob(ctx, job.ID, time.Minute)
	testenv.Must(t, err)
	testenv.Must(t, a.store.FinishJob(ctx, claimed, dsr.Outcome{Status: dsr.JobSucceeded, Records: 0,
		Collections: []dsr.CollectionResult{{Name: "customers", Outcome: "masked"}}}))
	_, err = a.store.Settle(ctx, id, "test")
	testenv.Must(t, err)

	type system struct {
		Records           int64  `json:"records"`
		RecordsIncomplete bool   `json:"records_incomplete"`
		RecordsNote       string `json:"records_note"`
	}
	want := []system{{Records: 0, RecordsIncomplete: true, RecordsNote: dsr.RecordsIncompleteNote}}
	var v struct {
		Jobs []system `json:"jobs"`
	}
	a.do("GET", "/v1/requests/"+id, agentKey, "", "", &v)
	if diff := cmp.Diff(want, v.Jobs); diff != "" {
		t.Errorf("jobs (-want +got):\n%s", diff)
	}
	var rep struct {
		Systems []system `json:"systems"`
	}
	a.do("GET", "/v1/requests/"+id+"/report", auditorKey, "", "", &rep)
	if diff := cmp.Diff(want, rep.Systems); diff != "" {
		t.Errorf("report systems (-want +got):\n%s", diff)
	}
	_, page := a.send("GET", "/v1/requests/"+id+"/report?format=html", auditorKey, "", "")
	for _, s := range []string{"0 or more records", "Counts may be short:", "an earlier attempt may have changed records"} {
		if !strings.Contains(string(page), s) {
			t.Errorf("html report lacks %q", s)
		}
	}
}

// TestReportNotSearched: the request view and the evidence report (JSON and
// HTML) say, per collection, which identity kinds it is matched by and
// which the request had; a collection it could not be matched against is
// "not searched: no email known", and a resolution stopped at its bound is
// shown.
func TestReportNotSearched(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	ctx := context.Background()
	r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeDeletion, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerified, ReceivedAt: time.Now(),
		Identities: []dsr.Identity{{Kind: dsr.KindPhone, Value: "+442079460001", Source: dsr.SourceSubject}}}, a.index)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.store.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{ResolveBoundReached: 3}); err != nil {
		t.Fatal(err)
	}
	job := dsr.NewJob(r.ID, "shop", dsr.ActionErase, time.Now())
	if err := a.store.CreateJobs(ctx, []dsr.Job{job}); err != nil {
		t.Fatal(err)
	}
	claimed, err := a.store.ClaimJob(ctx, job.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cols := []dsr.CollectionResult{
		{Name: "customers", Records: 1, Outcome: "masked", MatchKinds: []string{"email", "phone"}, KindsKnown: []string{"phone"}},
		{Name: "tickets", Outcome: dsr.OutcomeNotSearched, MatchKinds: []string{"email"}, KindsKnown: []string{}, Note: "no email known"},
	}
	if err := a.store.FinishJob(ctx, claimed, dsr.Outcome{Status: dsr.JobSucceeded, Records: 1, Collections: cols}); err != nil {
		t.Fatal(err)
	}
	wantCols := []dsr.CollectionResult{
		{Name: "customers", Records: 1, Outcome: "masked", MatchKinds: []string{"email", "phone"}, KindsKnown: []string{"phone"}},
		{Name: "tickets", Outcome: "not_searched", MatchKinds: []string{"email"}, KindsKnown: []string{}, Note: "no email known"},
	}
	var view struct {
		ResolveBoundReached int `json:"resolve_bound_reached"`
		Jobs                []struct {
			Collections []dsr.CollectionResult `json:"collections"`
		} `json:"jobs"`
	}
	if resp := a.do("GET", "/v1/requests/"+r.ID, agentKey, "", "", &view); resp.StatusCode != 200 || len(view.Jobs) != 1 {
		t.Fatalf("view: %d %+v", resp.StatusCode, view)
	}
	if diff := cmp.Diff(wantCols, view.Jobs[0].Collections); diff != "" {
		t.Errorf("view collections (-want +got):\n%s", diff)
	}
	if view.ResolveBoundReached != 3 {
		t.Errorf("view resolve_bound_reached = %d; want 3", view.ResolveBoundReached)
	}
	var rep struct {
		Request struct {
			ResolveBoundReached int `json:"resolve_bound_reached"`
		} `json:"request"`
		Systems []struct {
			Collections []dsr.CollectionResult `json:"collections"`
		} `json:"systems"`
	}
	if resp := a.do("GET", "/v1/requests/"+r.ID+"/report", auditorKey, "", "", &rep); resp.StatusCode != 200 || len(rep.Systems) != 1 {
		t.Fatalf("report: %d %+v", resp.StatusCode, rep)
	}
	if diff := cmp.Diff(wantCols, rep.Systems[0].Collections); diff != "" {
		t.Errorf("report collections (-want +got):\n%s", diff)
	}
	if rep.Request.ResolveBoundReached != 3 {
		t.Errorf("report resolve_bound_reached = %d; want 3", rep.Request.ResolveBoundReached)
	}
	_, page := a.send("GET", "/v1/requests/"+r.ID+"/report?format=html", auditorKey, "", "")
	for _, want := range []string{
		"customers: 1 masked <span class=\"muted\">(matched by email, phone; known: phone)</span>",
		"tickets: <b>not searched: no email known</b> <span class=\"muted\">(matched by email; known: none)</span>",
		"stopped at its bound of 3 rounds while still finding identities",
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("html report lacks %q", want)
		}
	}
}

// TestBulkItemFieldGivenTwice: an item that gives a field twice is refused
// on its own, naming the field, as an unknown field is; the other items are
// filed; an item the decoder cannot read (a number out of range) does not
// turn the check off for the rest.
func TestBulkItemFieldGivenTwice(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	body := `{"requests":[1e999,` +
		`{"type":"access","regulation":"gdpr","subject":{"email":"b1@example.com"}},` +
		`{"type":"access","regulation":"gdpr","subject":{"email":"b2@example.com"},"type":"deletion"}]}`
	var out bulkOut
	resp := a.do("POST", "/v1/requests/bulk", agentKey, "application/json", body, &out)
	if resp.StatusCode != 200 || out.Accepted != 1 || out.Rejected != 2 || len(out.Results) != 3 {
		_, raw := a.send("POST", "/v1/requests/bulk", agentKey, "application/json", body)
		t.Fatalf("bulk: %d %+v\n%s", resp.StatusCode, out, raw)
	}
	for i, want := range []int{400, 202, 400} {
		if out.Results[i].Status != want {
			t.Errorf("item %d: %+v, want %d", i, out.Results[i], want)
		}
	}
	if f := out.Results[2].Problem.fields(); len(f) != 1 || f[0] != "type" {
		t.Errorf("item 2 names %v, want type", f)
	}
	if n := a.countRequests(); n != 1 {
		t.Errorf("%d requests stored, want the one good item", n)
	}
}
