package opendsr_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/opendsr"
	spec "github.com/dsar-project/dsar/internal/opendsr"
)

var ada = connectors.Subject{Identities: []connectors.Identity{
	{Kind: "email", Value: "ada@example.com"}, {Kind: "customer_id", Value: "cus_1"}, {Kind: "phone", Value: "+33612345678"},
}}

// jobCtx is the context a worker gives the connector for job id.
func jobCtx(t *testing.T, id string, a connectors.Action) context.Context {
	return connectors.WithJob(t.Context(), connectors.JobRef{ID: id, RequestID: strings.Split(id, ":")[0], Connector: "vendor", Action: a})
}

// records collects an export.
type records map[string][]any

func (r records) WriteRecord(_ context.Context, collection string, doc any) error {
	r[collection] = append(r[collection], doc)
	return nil
}

// TestErasureEndsByCallback: an erasure is filed with the identities the
// processor supports, raw, under an id derived from the job (the same at
// every attempt), with the job's callback URL; the processor's signed
// callback is verified, and its answer ends the job with the count.
func TestErasureEndsByCallback(t *testing.T) {
	t.Parallel()
	p := newProcessor(t)
	c := p.connector(t, nil)
	job := "req-1:vendor:erase"
	ctx := jobCtx(t, job, connectors.ActionErase)
	res, err := connectors.Do(ctx, c, connectors.ActionErase, ada, "", nil, nil)
	if err != nil || res.Pending == nil || !spec.ValidID(res.Pending.Handle) {
		t.Fatalf("erase: %+v, %v; want pending on a subject_request_id", res, err)
	}
	srid := res.Pending.Handle
	if again, err := connectors.Do(ctx, c, connectors.ActionErase, ada, "", nil, nil); err != nil || again.Pending == nil || again.Pending.Handle != srid {
		t.Fatalf("the same job again: %+v, %v; want the same id %s", again, err, srid)
	}
	if other, _ := connectors.Do(jobCtx(t, "req-2:vendor:erase", connectors.ActionErase), c, connectors.ActionErase, ada, "", nil, nil); other.Pending == nil || other.Pending.Handle == srid {
		t.Fatalf("another job got %+v; want another id", other.Pending)
	}
	req, ok := p.request(srid)
	if !ok {
		t.Fatal("the processor holds no request under the handle")
	}
	want := []spec.Identity{{Type: "controller_customer_id", Value: "cus_1", Format: "raw"}, {Type: "email", Value: "ada@example.com", Format: "raw"}}
	if diff := cmp.Diff(want, req.SubjectIdentities); diff != "" {
		t.Errorf("identities sent (-want +got):\n%s", diff)
	}
	cbURL := callbackPrefix + url.PathEscape(job)
	if req.SubjectRequestType != "erasure" || req.Regulation != "gdpr" || len(req.StatusCallbackURLs) != 1 || req.StatusCallbackURLs[0] != cbURL {
		t.Errorf("request %+v; want an erasure under gdpr calling back %s", req, cbURL)
	}

	n := int64(4)
	p.set(srid, spec.StatusCompleted, &n)
	h, body := p.callback(t, spec.Signer{}, srid, spec.StatusCompleted, cbURL)
	handle, err := c.VerifyCallback(t.Context(), connectors.ActionErase, h, body, time.Now())
	if err != nil || handle != srid {
		t.Fatalf("the processor's callback: %q, %v", handle, err)
	}
	body = []byte(strings.Replace(string(body), `"request_status":"completed"`, `"request_status":"completed","results_count":4`, 1))
	res, err = connectors.Do(ctx, c, connectors.ActionErase, ada, srid, body, nil)
	if err != nil || res.Pending != nil || res.Records != 4 || res.Collections[0].Outcome != "deleted" {
		t.Fatalf("the answer: %+v, %v; want done, 4 records deleted", res, err)
	}
	// A status read says the same.
	if res, err := connectors.Do(ctx, c, connectors.ActionErase, ada, srid, nil, nil); err != nil || res.Pending != nil || res.Records != 4 {
		t.Fatalf("poll after completion: %+v, %v", res, err)
	}
}

// TestExportEndsByPoll: without a callback URL the access request is
// polled; it waits while pending or in progress, and once completed the
// export holds the processor's reference to the results.
func TestExportEndsByPoll(t *testing.T) {
	t.Parallel()
	p := newProcessor(t)
	c := p.connector(t, func(s *opendsr.Spec) { s.CallbackURL = ""; s.PollEvery = "5m"; s.Regulation = "ccpa" })
	ctx := jobCtx(t, "req-3:vendor:export", connectors.ActionExport)
	out := records{}
	res, err := connectors.Do(ctx, c, connectors.ActionExport, ada, "", nil, out)
	if err != nil || res.Pending == nil || res.Pending.PollAfter != 5*time.Minute {
		t.Fatalf("export: %+v, %v; want pending, polled every 5m", res, err)
	}
	srid := res.Pending.Handle
	if req, _ := p.request(srid); req.SubjectRequestType != "access" || req.Regulation != "ccpa" || len(req.StatusCallbackURLs) != 0 {
		t.Errorf("request %+v; want an access under ccpa with no callback", req)
	}
	for _, st := range []string{spec.StatusPending, spec.StatusInProgress} {
		p.set(srid, st, nil)
		if res, err := connectors.Do(ctx, c, connectors.ActionExport, ada, srid, nil, out); err != nil || res.Pending == nil || res.Pending.Handle != srid {
			t.Fatalf("%s: %+v, %v; want still pending", st, res, err)
		}
	}
	n := int64(12)
	p.set(srid, spec.StatusCompleted, &n)
	res, err = connectors.Do(ctx, c, connectors.ActionExport, ada, srid, nil, out)
	if err != nil || res.Pending != nil || res.Records != 1 {
		t.Fatalf("completed: %+v, %v", res, err)
	}
	got, ok := out["requests"]
	if !ok || len(got) != 1 {
		t.Fatalf("export %v; want one record in requests", out)
	}
	rec := got[0].(map[string]any)
	if rec["processor"] != domain || rec["subject_request_id"] != srid || rec["results_count"] != int64(12) {
		t.Errorf("record %v", rec)
	}
}

// TestCancelledFailsForGood: a request the processor cancels ends the job
// with a permanent error naming the processor and the request.
func TestCancelledFailsForGood(t *testing.T) {
	t.Parallel()
	p := newProcessor(t)
	c := p.connector(t, nil)
	ctx := jobCtx(t, "req-4:vendor:erase", connectors.ActionErase)
	res, err := connectors.Do(ctx, c, connectors.ActionErase, ada, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.set(res.Pending.Handle, spec.StatusCancelled, nil)
	_, err = connectors.Do(ctx, c, connectors.ActionErase, ada, res.Pending.Handle, nil, nil)
	if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "cancelled") || !strings.Contains(err.Error(), res.Pending.Handle) {
		t.Fatalf("cancelled: %v; want a permanent error naming the request", err)
	}
}

// TestIdentities: what is sent follows the discovery document: a hash
// format when raw is not taken, nothing (not searched) for a subject with
// no supported kind, and a permanent error when the processor takes no
// kind dsar holds or not the request type.
func TestIdentities(t *testing.T) {
	t.Parallel()
	p := newProcessor(t)
	p.supported = []spec.Identity{{Type: "email", Format: spec.FormatSHA256}, {Type: "email", Format: spec.FormatMD5}}
	c := p.connector(t, nil)
	res, err := connectors.Do(jobCtx(t, "req-5:vendor:erase", connectors.ActionErase), c, connectors.ActionErase, ada, "", nil, nil)
	if err != nil || res.Pending == nil {
		t.Fatalf("%+v, %v", res, err)
	}
	sum := sha256.Sum256([]byte("ada@example.com"))
	req, _ := p.request(res.Pending.Handle)
	if diff := cmp.Diff([]spec.Identity{{Type: "email", Format: "sha256", Value: hex.EncodeToString(sum[:])}}, req.SubjectIdentities); diff != "" {
		t.Errorf("hashed identities (-want +got):\n%s", diff)
	}

	phoneOnly := connectors.Subject{Identities: []connectors.Identity{{Kind: "phone", Value: "+33612345678"}}}
	res, err = connectors.Do(jobCtx(t, "req-6:vendor:erase", connectors.ActionErase), c, connectors.ActionErase, phoneOnly, "", nil, nil)
	if err != nil || res.Pending != nil || len(res.Collections) != 1 || res.Collections[0].Outcome != connectors.OutcomeNotSearched {
		t.Fatalf("a subject with no email: %+v, %v; want not searched", res, err)
	}
	if p.sent() != 1 {
		t.Errorf("a request was sent for a subject the processor cannot match")
	}

	q := newProcessor(t)
	q.supported = []spec.Identity{{Type: "roku_publisher_id", Format: "raw"}}
	q.types = []string{spec.TypeErasure}
	cq := q.connector(t, nil)
	if _, err := connectors.Do(jobCtx(t, "req-7:vendor:export", connectors.ActionExport), cq, connectors.ActionExport, ada, "", nil, records{}); !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "no access requests") {
		t.Errorf("an access to a processor taking only erasures: %v", err)
	}
}

// TestFaults: each way the processor refuses is reported as what it is.
func TestFaults(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		code       int
		retryAfter string
		permanent  bool
		delay      time.Duration
	}{
		{"rate limited", http.StatusTooManyRequests, "7", false, 7 * time.Second},
		{"rate limited, no Retry-After", http.StatusTooManyRequests, "", false, time.Minute},
		{"unavailable", http.StatusServiceUnavailable, "30", false, 30 * time.Second},
		{"server error", http.StatusInternalServerError, "", false, 0},
		{"token refused", http.StatusForbidden, "", true, 0},
		{"gone", http.StatusNotFound, "", true, 0},
		{"redirect", http.StatusFound, "", true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProcessor(t)
			p.fail, p.retryAfter = tt.code, tt.retryAfter
			_, err := connectors.Do(jobCtx(t, "req-8:vendor:erase", connectors.ActionErase), p.connector(t, nil), connectors.ActionErase, ada, "", nil, nil)
			var ra *connectors.RetryAfterError
			switch {
			case err == nil:
				t.Fatal("no error")
			case errors.Is(err, connectors.ErrPermanent) != tt.permanent:
				t.Errorf("%v: permanent %v, want %v", err, !tt.permanent, tt.permanent)
			case tt.delay > 0 && (!errors.As(err, &ra) || ra.Delay != tt.delay):
				t.Errorf("%v: want a retry after %s", err, tt.delay)
			}
		})
	}
	p := newProcessor(t)
	_, err := connectors.Do(jobCtx(t, "req-9:vendor:erase", connectors.ActionErase), p.connector(t, func(s *opendsr.Spec) { s.Token = "wrong-token-000000" }), connectors.ActionErase, ada, "", nil, nil)
	if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "Unauthenticated") || strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("a wrong token: %v; want a permanent 401 with the reason, not the token", err)
	}
}

// TestCheck: `dsar connectors test` passes against a processor that takes
// the connector's token and request types, and says what fails otherwise.
func TestCheck(t *testing.T) {
	t.Parallel()
	p := newProcessor(t)
	for _, ch := range p.connector(t, nil).Check(t.Context()) {
		if !ch.Passed() {
			t.Errorf("%s: %v", ch.What, ch.Err)
		}
	}
	p.types = []string{spec.TypeErasure}
	failed := map[string]bool{}
	for _, ch := range p.connector(t, func(s *opendsr.Spec) { s.Token = "not-the-token-0000" }).Check(t.Context()) {
		failed[ch.What] = !ch.Passed()
	}
	want := map[string]bool{"discovery document and certificate for processor.test": false, "processor takes access requests (export)": true,
		"processor takes erasure requests (erase)": false, "token accepted": true}
	if diff := cmp.Diff(want, failed); diff != "" {
		t.Errorf("checks failed (-want +got):\n%s", diff)
	}
}

// TestAdvertisingIDs: an advertising id is sent as each advertising id
// type the processor takes (one value names one device, whichever
// platform it is read as), a device id as each device id type.
func TestAdvertisingIDs(t *testing.T) {
	t.Parallel()
	p := newProcessor(t)
	p.supported = []spec.Identity{{Type: "ios_advertising_id", Format: "raw"}, {Type: "android_advertising_id", Format: "raw"}, {Type: "android_id", Format: "raw"}}
	const idfa, androidID = "6d92078a-8246-4ba4-ae5b-76104861e7dc", "3f2a9c0b7e1d4a56"
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "advertising_id", Value: idfa}, {Kind: "device_id", Value: androidID}, {Kind: "email", Value: "ada@example.com"}}}
	res, err := connectors.Do(jobCtx(t, "req-10:vendor:erase", connectors.ActionErase), p.connector(t, nil), connectors.ActionErase, s, "", nil, nil)
	if err != nil || res.Pending == nil {
		t.Fatalf("%+v, %v", res, err)
	}
	req, _ := p.request(res.Pending.Handle)
	want := []spec.Identity{{Type: "android_advertising_id", Value: idfa, Format: "raw"}, {Type: "android_id", Value: androidID, Format: "raw"},
		{Type: "ios_advertising_id", Value: idfa, Format: "raw"}}
	if diff := cmp.Diff(want, req.SubjectIdentities); diff != "" {
		t.Errorf("identities sent (-want +got):\n%s", diff)
	}
}

// TestRetryPassesAnew: after an agent retries a job (the processor
// cancelled its request), the request is passed under a new
// subject_request_id, with a callback URL naming the retry; a resend of
// the same attempt keeps the id. A callback must name the URL given with
// its id.
func TestRetryPassesAnew(t *testing.T) {
	t.Parallel()
	p := newProcessor(t)
	c := p.connector(t, nil)
	job := connectors.JobRef{ID: "req-11:vendor:erase", RequestID: "req-11", Connector: "vendor", Action: connectors.ActionErase}
	first, err := connectors.Do(connectors.WithJob(t.Context(), job), c, connectors.ActionErase, ada, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.set(first.Pending.Handle, spec.StatusCancelled, nil)
	job.Retries = 1
	ctx := connectors.WithJob(t.Context(), job)
	retried, err := connectors.Do(ctx, c, connectors.ActionErase, ada, "", nil, nil)
	if err != nil || retried.Pending == nil || retried.Pending.Handle == first.Pending.Handle {
		t.Fatalf("the retry: %+v, %v; want pending under a new id", retried, err)
	}
	if again, _ := connectors.Do(ctx, c, connectors.ActionErase, ada, "", nil, nil); again.Pending == nil || again.Pending.Handle != retried.Pending.Handle {
		t.Errorf("the retry sent again: %+v; want the same id", again.Pending)
	}
	srid := retried.Pending.Handle
	req, _ := p.request(srid)
	cbURL := callbackPrefix + url.PathEscape(job.ID) + "?retry=1"
	if len(req.StatusCallbackURLs) != 1 || req.StatusCallbackURLs[0] != cbURL {
		t.Fatalf("callback URLs %v; want %s", req.StatusCallbackURLs, cbURL)
	}
	h, b := p.callback(t, spec.Signer{}, srid, spec.StatusCompleted, cbURL)
	if handle, err := c.VerifyCallback(t.Context(), connectors.ActionErase, h, b, time.Now()); err != nil || handle != srid {
		t.Errorf("the retried request's callback: %q, %v", handle, err)
	}
	for _, u := range []string{callbackPrefix + url.PathEscape(job.ID), cbURL[:len(cbURL)-1] + "2", cbURL + "&x=1", callbackPrefix + url.PathEscape(job.ID) + "?retry=01"} {
		h, b := p.callback(t, spec.Signer{}, srid, spec.StatusCompleted, u)
		if _, err := c.VerifyCallback(t.Context(), connectors.ActionErase, h, b, time.Now()); !errors.Is(err, connectors.ErrCallbackInvalid) {
			t.Errorf("a callback naming %s for the retried request: %v; want refused", u, err)
		}
	}
}
