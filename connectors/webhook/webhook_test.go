package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/webhook"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/netguard"
	sw "github.com/dsar-project/dsar/internal/webhook"
)

var ada = connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ada@example.com"}}}

// recorder keeps the records written to it.
type recorder struct{ records map[string][]string }

func (r *recorder) WriteRecord(_ context.Context, collection string, doc any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	if r.records == nil {
		r.records = map[string][]string{}
	}
	r.records[collection] = append(r.records[collection], string(b))
	return nil
}

// TestAnswers: how each answer of the receiver ends the action: a result,
// a wait, a transient error, connectors.RetryAfter, or connectors.Permanent.
func TestAnswers(t *testing.T) {
	t.Parallel()
	type want int
	const (
		ok want = iota
		pending
		transient
		retryAfter
		permanent
	)
	body := func(code int, header, text string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			if header != "" {
				k, v, _ := strings.Cut(header, ": ")
				w.Header().Set(k, v)
			}
			w.WriteHeader(code)
			_, _ = w.Write([]byte(text))
		}
	}
	tests := []struct {
		name    string
		action  connectors.Action
		h       http.HandlerFunc
		want    want
		delay   time.Duration
		records int64
	}{
		{"200 export", connectors.ActionExport, body(200, "", `{"collections":[{"name":"c","records":1}],"export":{"c":[{"a":1}]}}`), ok, 0, 1},
		{"200 erase, retained", connectors.ActionErase, body(200, "", `{"collections":[{"name":"inv","records":3,"outcome":"retained","basis":"tax law"}]}`), ok, 0, 3},
		{"200 nothing held", connectors.ActionErase, body(200, "", `{"collections":[]}`), ok, 0, 0},
		{"200 reporting a failure", connectors.ActionErase, body(200, "", `{"error":"account locked"}`), permanent, 0, 0},
		{"200 not valid", connectors.ActionErase, body(200, "", `{"collections":[{"name":"c"}]}`), permanent, 0, 0},
		{"200 too large", connectors.ActionErase, body(200, "", `{"collections":[],"x":"`+strings.Repeat("a", dsr.MaxAnswer)+`"}`), permanent, 0, 0},
		{"202", connectors.ActionErase, body(202, "", `{"handle":"op-7"}`), pending, 0, 0},
		{"202 without a body", connectors.ActionErase, body(202, "", ``), pending, 0, 0},
		{"202 with a bad handle", connectors.ActionErase, body(202, "", `{"handle":"a b"}`), permanent, 0, 0},
		{"204", connectors.ActionErase, body(204, "", ``), permanent, 0, 0},
		{"302", connectors.ActionErase, body(302, "Location: http://127.0.0.1:1/", ``), permanent, 0, 0},
		{"400", connectors.ActionErase, body(400, "", ``), permanent, 0, 0},
		{"401", connectors.ActionErase, body(401, "", ``), permanent, 0, 0},
		{"403", connectors.ActionErase, body(403, "", ``), permanent, 0, 0},
		{"404", connectors.ActionErase, body(404, "", ``), permanent, 0, 0},
		{"408", connectors.ActionErase, body(408, "", ``), transient, 0, 0},
		{"429 Retry-After seconds", connectors.ActionErase, body(429, "Retry-After: 7", ``), retryAfter, 7 * time.Second, 0},
		{"429 Retry-After date", connectors.ActionErase, body(429, "Retry-After: "+time.Now().Add(2*time.Hour).UTC().Format(http.TimeFormat), ``), retryAfter, 2 * time.Hour, 0},
		{"429 without Retry-After", connectors.ActionErase, body(429, "", ``), retryAfter, time.Minute, 0},
		{"500", connectors.ActionErase, body(500, "", ``), transient, 0, 0},
		{"502", connectors.ActionErase, body(502, "", ``), transient, 0, 0},
		{"503", connectors.ActionErase, body(503, "", ``), transient, 0, 0},
		{"503 Retry-After", connectors.ActionErase, body(503, "Retry-After: 30", ``), retryAfter, 30 * time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := webhook.New("crm", webhook.Spec{URL: serve(t, tt.h), Secret: testSecret, AllowInsecure: true, AllowPrivate: true,
				CallbackURL: "https://dsar.example.com"})
			if err != nil {
				t.Fatal(err)
			}
			ctx := connectors.WithJob(t.Context(), connectors.JobRef{ID: "req_1:crm:" + string(tt.action)})
			res, err := connectors.Run(ctx, c, tt.action, ada, &recorder{})
			delay, isRetry := connectors.RetryDelay(err)
			var got want
			switch {
			case err == nil && res.Pending != nil:
				got = pending
			case err == nil:
				got = ok
			case errors.Is(err, connectors.ErrPermanent):
				got = permanent
			case isRetry:
				got = retryAfter
			default:
				got = transient
			}
			if got != tt.want {
				t.Fatalf("Run = %+v, %v; want outcome %d, got %d", res, err, tt.want, got)
			}
			if tt.want == retryAfter && (delay < tt.delay-2*time.Second || delay > tt.delay) {
				t.Errorf("retry after %v; want %v", delay, tt.delay)
			}
			if tt.want == ok && res.Records != tt.records {
				t.Errorf("records %d; want %d", res.Records, tt.records)
			}
			if err != nil && strings.Contains(err.Error(), "ada@example.com") {
				t.Errorf("the error quotes the subject: %v", err)
			}
		})
	}
}

// TestPendingHandle: a 202 keeps the job waiting, unpolled, on the handle
// its body names, or else on the call's webhook-id (the job's id).
func TestPendingHandle(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ body, want string }{
		{`{"handle":"op-7","eta":"soon"}`, "op-7"},
		{``, "req_1:crm:erase"},
		{`{}`, "req_1:crm:erase"},
	} {
		url := serve(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(tt.body))
		})
		c, err := webhook.New("crm", webhook.Spec{URL: url, Secret: testSecret, AllowInsecure: true, AllowPrivate: true, CallbackURL: "https://dsar.example.com/"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Erase(connectors.WithJob(t.Context(), connectors.JobRef{ID: "req_1:crm:erase"}), ada)
		if err != nil || res.Pending == nil || res.Pending.Handle != tt.want || res.Pending.PollAfter < connectors.NoPoll {
			t.Errorf("202 %q: %+v, %v; want pending on %q, not polled", tt.body, res.Pending, err, tt.want)
		}
		// Without a job, dsar can offer no callback: a 202 cannot be taken.
		if _, err := c.Erase(t.Context(), ada); !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "callback") {
			t.Errorf("202 to a call without a callback URL: %v; want a permanent error", err)
		}
	}
}

// TestRequest: every call is signed with the connector's secret; its
// webhook-id is the job's id, the same at every attempt, or for a call
// made for no job a hash naming no identity; the body carries the action,
// the identities and the callback URL of the job.
func TestRequest(t *testing.T) {
	t.Parallel()
	var got []http.Header
	var bodies []webhook.Request
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if _, err := sw.Verify(r.Header, b, time.Now(), 0, mustSecret(t, testSecret)); err != nil {
			t.Errorf("the call does not verify: %v", err)
		}
		var req webhook.Request
		if err := json.Unmarshal(b, &req); err != nil {
			t.Error(err)
		}
		got, bodies = append(got, r.Header.Clone()), append(bodies, req)
		_, _ = w.Write([]byte(`{"collections":[]}`))
	})
	c, err := webhook.New("crm", webhook.Spec{URL: url, Secret: testSecret, AllowInsecure: true, AllowPrivate: true, CallbackURL: "https://dsar.example.com/api/"})
	if err != nil {
		t.Fatal(err)
	}
	job := connectors.WithJob(t.Context(), connectors.JobRef{ID: "req_1:crm:opt_out"})
	for range 2 {
		if _, err := c.OptOut(job, ada); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := c.OptOut(t.Context(), ada); err != nil {
			t.Fatal(err)
		}
	}
	want := webhook.Request{Version: 1, ID: "req_1:crm:opt_out", Connector: "crm", Action: connectors.ActionOptOut,
		Identities: []webhook.Identity{{Kind: "email", Value: "ada@example.com"}}, CallbackURL: "https://dsar.example.com/api/v1/callbacks/req_1:crm:opt_out"}
	if diff := cmp.Diff(want, bodies[0]); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if got[0].Get("webhook-id") != "req_1:crm:opt_out" || got[1].Get("webhook-id") != got[0].Get("webhook-id") {
		t.Errorf("webhook-ids of a job's attempts: %q, %q; want the job's id twice", got[0].Get("webhook-id"), got[1].Get("webhook-id"))
	}
	id := got[2].Get("webhook-id")
	if !strings.HasPrefix(id, "dsar_") || id != got[3].Get("webhook-id") || strings.Contains(id, "ada") || bodies[2].CallbackURL != "" {
		t.Errorf("webhook-ids of calls for no job: %q, %q (callback %q); want one stable hash, no callback", id, got[3].Get("webhook-id"), bodies[2].CallbackURL)
	}
}

// TestOutboundAddresses: the connector reaches only public addresses unless
// the file says allow_private: an address in the URL is refused when the
// file is loaded, a name resolving to loopback when it is dialled, and a
// redirect is never followed; with allow_private the loopback receiver
// works.
func TestOutboundAddresses(t *testing.T) {
	t.Parallel()
	var reached atomic.Int32
	inside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached.Add(1)
		_, _ = w.Write([]byte(`{"collections":[]}`))
	}))
	t.Cleanup(inside.Close)
	port := inside.URL[strings.LastIndex(inside.URL, ":")+1:]

	for _, u := range []string{inside.URL, "http://[::1]:" + port, "http://169.254.169.254/latest/meta-data", "http://10.0.0.8/", "http://100.64.0.1/"} {
		if _, err := webhook.New("crm", webhook.Spec{URL: u, Secret: testSecret, AllowInsecure: true}); err == nil || !strings.Contains(err.Error(), "allow_private") {
			t.Errorf("url %s without allow_private: %v; want refused at load", u, err)
		}
	}
	c, err := webhook.New("crm", webhook.Spec{URL: "http://localhost:" + port, Secret: testSecret, AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Erase(t.Context(), ada); !errors.Is(err, netguard.ErrRefused) || !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("a name resolving to loopback: %v; want refused for good at the dial", err)
	}
	if reached.Load() != 0 {
		t.Fatalf("the loopback receiver was reached %d times without allow_private", reached.Load())
	}

	redirect := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inside.URL+"/latest/meta-data", http.StatusFound)
	})
	c, err = webhook.New("crm", webhook.Spec{URL: redirect, Secret: testSecret, AllowInsecure: true, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Erase(t.Context(), ada); !errors.Is(err, netguard.ErrRedirect) || !errors.Is(err, connectors.ErrPermanent) || reached.Load() != 0 {
		t.Errorf("a redirect: %v (target reached %d times); want a permanent error, never followed", err, reached.Load())
	}

	c, err = webhook.New("crm", webhook.Spec{URL: inside.URL, Secret: testSecret, AllowInsecure: true, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Erase(t.Context(), ada); err != nil || reached.Load() != 1 {
		t.Errorf("with allow_private: %v, reached %d times; want the loopback receiver to answer", err, reached.Load())
	}
	if _, err := webhook.New("crm", webhook.Spec{URL: "http://crm.example.com/", Secret: testSecret}); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("plain http without allow_insecure: %v; want refused", err)
	}
}

// callback signs body as the receiver's callback, at ts, with secret.
func callback(t testing.TB, secret string, ts time.Time, body string) http.Header {
	h := http.Header{}
	mustSecret(t, secret).SignHeaders(h, "msg_"+strconv.FormatInt(ts.UnixNano(), 10), ts, []byte(body))
	return h
}

// TestCallbacks: a callback verifies only when signed with the connector's
// secret within the replay window and with a body an answer may have,
// naming its handle; Answer then takes it up as a 200's body.
func TestCallbacks(t *testing.T) {
	t.Parallel()
	c, err := webhook.New("crm", webhook.Spec{URL: "https://crm.example.com/dsar", Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := `{"handle":"op-7","collections":[{"name":"customers","records":1}],"export":{"customers":[{"email":"ada@example.com"}]}}`
	other := "whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA=="
	tests := []struct {
		name   string
		action connectors.Action
		h      http.Header
		body   string
		want   error
	}{
		{"good", connectors.ActionExport, callback(t, testSecret, now, good), good, nil},
		{"tampered body", connectors.ActionExport, callback(t, testSecret, now, good), strings.Replace(good, "1", "2", 1), connectors.ErrCallbackUnauthenticated},
		{"another secret", connectors.ActionExport, callback(t, other, now, good), good, connectors.ErrCallbackUnauthenticated},
		{"stale", connectors.ActionExport, callback(t, testSecret, now.Add(-6*time.Minute), good), good, connectors.ErrCallbackUnauthenticated},
		{"from the future", connectors.ActionExport, callback(t, testSecret, now.Add(6*time.Minute), good), good, connectors.ErrCallbackUnauthenticated},
		{"unsigned", connectors.ActionExport, http.Header{}, good, connectors.ErrCallbackUnauthenticated},
		{"no handle", connectors.ActionExport, callback(t, testSecret, now, `{"collections":[]}`), `{"collections":[]}`, connectors.ErrCallbackInvalid},
		{"records for an erasure", connectors.ActionErase, callback(t, testSecret, now, good), good, connectors.ErrCallbackInvalid},
	}
	for _, tt := range tests {
		handle, err := c.VerifyCallback(t.Context(), tt.action, tt.h, []byte(tt.body), now)
		if !errors.Is(err, tt.want) || (err == nil && handle != "op-7") {
			t.Errorf("%s: VerifyCallback = %q, %v; want %v", tt.name, handle, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "ada@example.com") {
			t.Errorf("%s: the error quotes the body: %v", tt.name, err)
		}
	}
	out := &recorder{}
	res, err := connectors.Answer(t.Context(), c, connectors.ActionExport, "op-7", []byte(good), out)
	if err != nil || res.Records != 1 || len(out.records["customers"]) != 1 {
		t.Errorf("Answer = %+v, %v, records %v; want 1 customer record", res, err, out.records)
	}
	if _, err := connectors.Answer(t.Context(), c, connectors.ActionExport, "op-8", []byte(good), out); !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("Answer for another handle: %v; want a permanent error", err)
	}
}

// TestAnswerSchema: an answer is checked strictly; each problem is named
// by its field, never by a value.
func TestAnswerSchema(t *testing.T) {
	t.Parallel()
	c, err := webhook.New("crm", webhook.Spec{URL: "https://crm.example.com/dsar", Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body, want string
		action           connectors.Action
	}{
		{"not JSON", `nope`, "not the JSON expected", connectors.ActionErase},
		{"trailing data", `{"handle":"h","collections":[]} {}`, "more after", connectors.ActionErase},
		{"unknown field", `{"handle":"h","collections":[],"colections":[]}`, "unknown field", connectors.ActionErase},
		{"no collections", `{"handle":"h"}`, "collections: required", connectors.ActionErase},
		{"no records", `{"handle":"h","collections":[{"name":"c"}]}`, "collections[0].records: required", connectors.ActionErase},
		{"negative", `{"handle":"h","collections":[{"name":"c","records":-1}]}`, "negative", connectors.ActionErase},
		{"bad name", `{"handle":"h","collections":[{"name":"a b","records":1}]}`, "collections[0].name", connectors.ActionErase},
		{"twice", `{"handle":"h","collections":[{"name":"c","records":1},{"name":"c","records":1}]}`, "listed twice", connectors.ActionErase},
		{"outcome", `{"handle":"h","collections":[{"name":"c","records":1,"outcome":"exported"}]}`, "outcome", connectors.ActionErase},
		{"retained without basis", `{"handle":"h","collections":[{"name":"c","records":1,"outcome":"retained"}]}`, "basis: required", connectors.ActionErase},
		{"basis when deleted", `{"handle":"h","collections":[{"name":"c","records":1,"basis":"x"}]}`, "basis: only", connectors.ActionErase},
		{"export count", `{"handle":"h","collections":[{"name":"c","records":2}],"export":{"c":[{}]}}`, "export.c: 1 records", connectors.ActionExport},
		{"export unlisted", `{"handle":"h","collections":[],"export":{"c":[{}]}}`, "does not list", connectors.ActionExport},
		{"record not an object", `{"handle":"h","collections":[{"name":"c","records":1}],"export":{"c":["ada@example.com"]}}`, "want a JSON object", connectors.ActionExport},
		{"error and result", `{"handle":"h","error":"x","collections":[]}`, "nothing else", connectors.ActionErase},
		{"bad handle", `{"handle":"a b","collections":[]}`, "handle", connectors.ActionErase},
	}
	for _, tt := range tests {
		_, err := c.VerifyCallback(t.Context(), tt.action, callback(t, testSecret, time.Now(), tt.body), []byte(tt.body), time.Now())
		if !errors.Is(err, connectors.ErrCallbackInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want ErrCallbackInvalid saying %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "ada@example.com") {
			t.Errorf("%s: the error quotes a value: %v", tt.name, err)
		}
	}
}
