package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/webhook"
	"github.com/dsar-project/dsar/workers"
)

var hookSecret, _ = webhook.ParseSecret("hook secret for the tests, 16+")

// receiver is a hook: it checks each call's signature under hookSecret
// (on the test's clock), keeps the bodies, and answers as answer says.
type receiver struct {
	t      *testing.T
	clock  *testenv.Clock
	mu     sync.Mutex
	bodies []map[string]any
	ids    []string
	answer func(n int) (int, string) // n counts calls from 1
	srv    *httptest.Server
}

func newReceiver(t *testing.T, clock *testenv.Clock, answer func(n int) (int, string)) *receiver {
	t.Helper()
	r := &receiver{t: t, clock: clock, answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		id, err := webhook.Verify(req.Header, body, clock.Now(), 0, hookSecret)
		if err != nil {
			t.Errorf("hook call not signed: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("hook call not JSON: %v", err)
		}
		r.mu.Lock()
		r.bodies, r.ids = append(r.bodies, m), append(r.ids, id)
		n := len(r.bodies)
		r.mu.Unlock()
		code, text := r.answer(n)
		w.WriteHeader(code)
		_, _ = io.WriteString(w, text)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) calls() ([]map[string]any, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies), slices.Clone(r.ids)
}

// answer is a receiver's fixed answer.
func answer(code int, body string) func(int) (int, string) {
	return func(int) (int, string) { return code, body }
}

// withHooks makes e's processor call the hooks h (the secret and a hold
// of an hour unless h says otherwise), with maxRetry fan-out retries.
func (e *env) withHooks(maxRetry int, h workers.HookOptions) *workers.Processor {
	e.t.Helper()
	if h.Secret == nil {
		h.Secret = hookSecret
	}
	if h.HoldMax == 0 {
		h.HoldMax = time.Hour
	}
	e.proc = workers.NewProcessor(workers.Deps{Store: e.store, Connectors: e.reg, Queue: e.queue, Index: e.index,
		Log: slog.New(slog.NewTextHandler(e.logs, nil))}, workers.Options{MaxRetry: maxRetry, Lease: time.Minute, JobTimeout: 10 * time.Second,
		SweepGrace: time.Minute, Now: e.clock.Now, Hooks: h})
	return e.proc
}

// events returns the data of the audit events of kind on request id.
func (e *env) events(id, kind string) []map[string]string {
	e.t.Helper()
	trail, err := e.store.AuditTrail(context.Background(), id)
	testenv.Must(e.t, err)
	var out []map[string]string
	for _, ev := range trail {
		if ev.Kind == kind {
			out = append(out, ev.Data)
		}
	}
	return out
}

// TestPreHookAddsIdentities: the identities the pre-fan-out hook adds reach
// the connectors (Grace's customer id erases her order too), are kept with
// source "hook" and audited by kind only; the hook got the request signed,
// with its identities. The post-processing hook then gets the outcome per
// system, without personal data, retried past a failure.
func TestPreHookAddsIdentities(t *testing.T) {
	t.Parallel()
	e := setup(t, 3)
	pre := newReceiver(t, e.clock, answer(http.StatusOK, `{"add_identities":[{"kind":"customer_id","value":" cus_grace "}]}`))
	post := newReceiver(t, e.clock, func(n int) (int, string) {
		if n == 1 {
			return http.StatusServiceUnavailable, ""
		}
		return http.StatusNoContent, ""
	})
	p := e.withHooks(3, workers.HookOptions{PreURL: pre.srv.URL, PostURL: post.srv.URL})
	e.startWorkers()
	r := e.file(dsr.TypeDeletion, "ada@example.com")
	testenv.Must(t, p.Fanout(context.Background(), r.ID))
	done := e.waitStatus(r.ID, dsr.StatusCompleted)

	if n := e.count("orders", bson.D{}); n != 0 {
		t.Errorf("%d orders left; want none: Grace's customer id came from the hook", n)
	}
	if !slices.Contains(done.Identities, dsr.Identity{Kind: dsr.KindCustomerID, Value: "cus_grace", Source: dsr.SourceHook}) {
		t.Errorf("identities %v lack the hook's customer id", done.Identities)
	}
	calls, ids := pre.calls()
	if len(calls) != 1 || calls[0]["event"] != "pre_fanout" || calls[0]["request_id"] != r.ID || ids[0] != "pre_fanout_"+r.ID+"_1" ||
		!strings.Contains(mustJSON(t, calls[0]["identities"]), "ada@example.com") {
		t.Errorf("pre-fan-out calls %v (ids %v)", calls, ids)
	}
	ev := e.events(r.ID, "hook_pre_called")
	if len(ev) != 1 || ev[0]["answer"] != "proceed" || ev[0]["added"] != "1" || ev[0]["added_kinds"] != "customer_id" || len(ev[0]["body_sha256"]) != 64 {
		t.Errorf("hook_pre_called events %v", ev)
	}
	if strings.Contains(mustJSON(t, ev), "cus_grace") {
		t.Error("the audit chain quotes the identity the hook added")
	}

	// The outcome: delivered at the second try, one id for both.
	deadline := time.Now().Add(20 * time.Second)
	for len(e.events(r.ID, "hook_post_delivered")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outcome never delivered; logs:\n%s", e.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	outs, oids := post.calls()
	if len(outs) != 2 || oids[0] != oids[1] {
		t.Fatalf("post-processing calls %d (ids %v); want 2 with one id", len(outs), oids)
	}
	body := mustJSON(t, outs[1])
	for _, want := range []string{`"event":"outcome"`, `"status":"completed"`, `"connector":"shop"`, `"action":"erase"`, `"records":3`} {
		if !strings.Contains(body, want) {
			t.Errorf("outcome %s lacks %s", body, want)
		}
	}
	if strings.Contains(body, "@") || strings.Contains(body, "cus_") {
		t.Errorf("outcome carries personal data: %s", body)
	}
	for {
		got, err := e.store.Request(context.Background(), r.ID)
		testenv.Must(t, err)
		if got.Status != dsr.StatusCompleted {
			t.Fatalf("after delivery: %s", got.Status)
		}
		if !slices.Contains(got.PendingNotices, dsr.NoticeHookOutcome) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outcome is still pending after its delivery: %v", got.PendingNotices)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	testenv.Must(t, err)
	return string(b)
}

// TestPreHookHold: a hold stops the fan-out without calling the hook again;
// a resume (with identities) lets it go on with them; a hold that sees no
// resume before HOLD_MAX sends the request to an agent, saying why, and
// makes its outcome due to the post-processing hook.
func TestPreHookHold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		status int
		body   string
	}{{"202", http.StatusAccepted, ""}, {"hold true", http.StatusOK, `{"hold":true}`}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, 3)
			pre := newReceiver(t, e.clock, answer(tt.status, tt.body))
			p := e.withHooks(3, workers.HookOptions{PreURL: pre.srv.URL, PostURL: "http://127.0.0.1:1/never", HoldMax: time.Hour})
			svc := app.New(app.Deps{Store: e.store, Queue: e.queue, Index: e.index, Now: e.clock.Now})

			resumed := e.file(dsr.TypeAccess, "ada@example.com")
			expired := e.file(dsr.TypeAccess, "grace@example.com")
			for _, r := range []*dsr.Request{resumed, expired} {
				testenv.Must(t, p.Fanout(ctx, r.ID))
				testenv.Must(t, p.Fanout(ctx, r.ID)) // still held: no second call
				got, err := e.store.Request(ctx, r.ID)
				testenv.Must(t, err)
				if got.Status != dsr.StatusVerified || !got.HookHold.Holding() || !got.HookHold.Until.Equal(e.clock.Now().Add(time.Hour).Truncate(time.Millisecond)) {
					t.Fatalf("held: %s %+v", got.Status, got.HookHold)
				}
				if ev := e.events(r.ID, "hook_pre_held"); len(ev) != 1 {
					t.Errorf("hook_pre_held events %v", ev)
				}
			}
			if calls, _ := pre.calls(); len(calls) != 2 {
				t.Errorf("%d hook calls for two requests fanned out twice each; want 2", len(calls))
			}

			// Junk in a resume changes nothing.
			_, err := svc.ResumeHook(ctx, resumed.ID, "msg_junk", []dsr.HookIdentity{{Kind: "passport", Value: "X"}, {Kind: "email", Value: "not an email"}})
			var ve *dsr.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) != 2 || strings.Contains(err.Error(), "not an email") {
				t.Errorf("junk resume: %v", err)
			}
			e.clock.Add(30 * time.Minute)
			rec, err := svc.ResumeHook(ctx, resumed.ID, "msg_1", []dsr.HookIdentity{{Kind: "phone", Value: "+44 20 7183 8750"}})
			testenv.Must(t, err)
			if rec.Request.HookHold.Holding() {
				t.Errorf("resume left the hold %+v", rec.Request.HookHold)
			}
			if _, err := svc.ResumeHook(ctx, resumed.ID, "msg_2", nil); !errors.Is(err, dsr.ErrConflict) {
				t.Errorf("second resume: %v; want ErrConflict", err)
			}
			testenv.Must(t, p.Fanout(ctx, resumed.ID))
			got, err := e.store.Request(ctx, resumed.ID)
			testenv.Must(t, err)
			if got.Status != dsr.StatusInProgress || !slices.Contains(got.Identities, dsr.Identity{Kind: dsr.KindPhone, Value: "+442071838750", Source: dsr.SourceHook}) {
				t.Errorf("after the resume: %s, identities %v", got.Status, got.Identities)
			}
			jobs, err := e.store.Jobs(ctx, resumed.ID)
			testenv.Must(t, err)
			if len(jobs) != 1 || !slices.ContainsFunc(jobs[0].Identities, func(id dsr.Identity) bool { return id.Source == dsr.SourceHook }) {
				t.Errorf("jobs %+v do not carry the resume's identity", jobs)
			}
			if ev := e.events(resumed.ID, "hook_pre_resumed"); len(ev) != 1 || ev[0]["message_id"] != "msg_1" || ev[0]["added_kinds"] != "phone" {
				t.Errorf("hook_pre_resumed events %v", ev)
			}

			// The other one: its hold runs out.
			e.clock.Add(31 * time.Minute)
			if _, err := svc.ResumeHook(ctx, expired.ID, "msg_3", nil); !errors.Is(err, dsr.ErrConflict) {
				t.Errorf("resume after the hold ended: %v; want ErrConflict", err)
			}
			testenv.Must(t, p.Fanout(ctx, expired.ID))
			got, err = e.store.Request(ctx, expired.ID)
			testenv.Must(t, err)
			last := got.History[len(got.History)-1]
			if got.Status != dsr.StatusNeedsAttention || !strings.Contains(last.Reason, "sent no resume") {
				t.Errorf("after the hold: %s (%q)", got.Status, last.Reason)
			}
			if !slices.Contains(got.PendingNotices, dsr.NoticeHookOutcome) {
				t.Errorf("pending notices %v lack the outcome", got.PendingNotices)
			}
			if ev := e.events(expired.ID, "hook_pre_expired"); len(ev) != 1 {
				t.Errorf("hook_pre_expired events %v", ev)
			}
			if calls, _ := pre.calls(); len(calls) != 2 {
				t.Errorf("%d hook calls; want still 2", len(calls))
			}
		})
	}
}

// TestPreHookResumeBeforeHold: a hook that sends its resume while the
// worker is still reading its 202 (the hold not yet recorded) is not
// refused: the resume waits for the hold and lifts it, and the fan-out
// goes on.
func TestPreHookResumeBeforeHold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := setup(t, 3)
	resumeSent := make(chan struct{})
	pre := newReceiver(t, e.clock, func(int) (int, string) {
		<-resumeSent // the resume is on its way before the hook answers
		time.Sleep(200 * time.Millisecond)
		return http.StatusAccepted, ""
	})
	p := e.withHooks(3, workers.HookOptions{PreURL: pre.srv.URL, HoldMax: time.Hour})
	svc := app.New(app.Deps{Store: e.store, Queue: e.queue, Index: e.index, Now: e.clock.Now})
	r := e.file(dsr.TypeAccess, "ada@example.com")

	resumed := make(chan error, 1)
	go func() {
		close(resumeSent)
		_, err := svc.ResumeHook(ctx, r.ID, "msg_early", nil)
		resumed <- err
	}()
	testenv.Must(t, p.Fanout(ctx, r.ID)) // records the hold
	if err := <-resumed; err != nil {
		t.Fatalf("a resume sent before the hold was recorded: %v", err)
	}
	testenv.Must(t, p.Fanout(ctx, r.ID))
	got, err := e.store.Request(ctx, r.ID)
	testenv.Must(t, err)
	if got.Status != dsr.StatusInProgress || got.HookHold.ResumeID != "msg_early" {
		t.Errorf("after an early resume: %s %+v", got.Status, got.HookHold)
	}
}

// TestPreHookFails: a hook that is down is retried as the fan-out is, and
// the request needs attention after the retries, saying why; a hook that
// refuses (4xx) or answers junk sends it to an agent at once. Never does
// the request proceed, nor any identity of a junk answer stick.
func TestPreHookFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	many := `{"add_identities":[` + strings.Repeat(`{"kind":"customer_id","value":"c"},`, dsr.MaxHookIdentities) + `{"kind":"customer_id","value":"c"}]}`
	for _, tt := range []struct {
		name     string
		status   int
		body     string
		failures int // fan-outs that fail before the request needs attention
		reason   string
	}{
		{"down", http.StatusServiceUnavailable, "", 3, "answered 503"},
		{"too many requests", http.StatusTooManyRequests, "", 3, "answered 429"},
		{"refuses", http.StatusForbidden, "", 0, "refused the request (answered 403)"},
		{"not JSON", http.StatusOK, "<html>", 0, "not JSON"},
		{"unknown field", http.StatusOK, `{"add_identity":[]}`, 0, "unknown field"},
		{"bad kind", http.StatusOK, `{"add_identities":[{"kind":"ssn","value":"078-05-1120"}]}`, 0, "add_identities[0].kind"},
		{"bad email", http.StatusOK, `{"add_identities":[{"kind":"email","value":"ada@@x"}]}`, 0, "add_identities[0].value"},
		{"too many", http.StatusOK, many, 0, "at most 20 identities"},
		{"too long", http.StatusOK, `{"add_identities":[{"kind":"customer_id","value":"` + strings.Repeat("x", 70<<10) + `"}]}`, 0, "too large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, 2)
			pre := newReceiver(t, e.clock, answer(tt.status, tt.body))
			p := e.withHooks(2, workers.HookOptions{PreURL: pre.srv.URL})
			r := e.file(dsr.TypeDeletion, "ada@example.com")
			for i := range tt.failures {
				if err := p.Fanout(ctx, r.ID); err == nil {
					t.Fatalf("fan-out %d with the hook down succeeded", i+1)
				}
				got, err := e.store.Request(ctx, r.ID)
				testenv.Must(t, err)
				if want := dsr.StatusVerified; i < tt.failures-1 && got.Status != want {
					t.Fatalf("after %d failures: %s; want %s", i+1, got.Status, want)
				}
			}
			if tt.failures == 0 {
				testenv.Must(t, p.Fanout(ctx, r.ID))
			}
			got, err := e.store.Request(ctx, r.ID)
			testenv.Must(t, err)
			last := got.History[len(got.History)-1]
			if got.Status != dsr.StatusNeedsAttention || !strings.Contains(last.Reason, tt.reason) {
				t.Errorf("%s (%q); want needs_attention saying %q", got.Status, last.Reason, tt.reason)
			}
			if len(got.Identities) != 1 {
				t.Errorf("identities %v; want the request's own", got.Identities)
			}
			if jobs, _ := e.store.Jobs(ctx, r.ID); len(jobs) != 0 {
				t.Errorf("%d jobs made", len(jobs))
			}
			if strings.Contains(last.Reason, "078-05") {
				t.Errorf("the reason quotes the answer: %q", last.Reason)
			}
			if calls, _ := pre.calls(); len(calls) != max(tt.failures, 1) {
				t.Errorf("%d calls; want %d", len(calls), max(tt.failures, 1))
			}
		})
	}
}
