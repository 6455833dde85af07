package segment

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
)

// The subject and the other person of the fake workspace: userIds are
// customer ids.
var (
	ada = connectors.Subject{Identities: []connectors.Identity{
		{Kind: "email", Value: "ada@example.com"}, {Kind: "customer_id", Value: "cus_ada_1"},
	}}
	bob = "cus_bob_2"
)

// seed gives the fake Ada's and Bob's events.
func seed(f *fake) {
	f.set(func(f *fake) { f.events["cus_ada_1"], f.events[bob] = 3, 2 })
}

// TestConformance runs the conformance suite against the fake workspace.
// Segment cannot export (the Public API reads no person's data), so
// Export is skipped by the suite. The suite's Erase and OptOut cases are
// skipped here, because they require an action on seeded data to report
// more than 0 records, and Segment reports no counts (every result is 0
// records; see the package doc); TestActions checks what those cases check
// besides the count. Stranger, Concurrent (the erasure and opt-out cases),
// Async and Faults run in full.
func TestConformance(t *testing.T) {
	t.Parallel()
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T) (connectors.Connector, *connectortest.Fixture) {
			if n := t.Name(); strings.HasSuffix(n, "/Erase") || strings.HasSuffix(n, "/OptOut") {
				t.Skip("Segment reports no record counts, so an action cannot report more than 0 records: TestActions checks the rest")
			}
			f := newFake(t)
			return f.connector(t, Spec{}), &connectortest.Fixture{
				Subject:     ada,
				OtherValues: []string{"bob@example.com", bob},
				Seed:        func(context.Context) { seed(f) },
				SubjectRecords: func(context.Context) int {
					n, _ := f.state("cus_ada_1")
					return n
				},
				OtherRecords: func(context.Context) int {
					n, suppressed := f.state(bob)
					if suppressed {
						return 0
					}
					return n
				},
				OptedOut: func(context.Context) bool {
					_, suppressed := f.state("cus_ada_1")
					return suppressed
				},
			}
		},
		Fault: func(t *testing.T, fault connectortest.Fault) connectors.Connector {
			f := newFake(t)
			switch fault {
			case connectortest.Unreachable:
				srv := httptest.NewServer(http.NotFoundHandler())
				srv.Close()
				c := f.connector(t, Spec{})
				c.base = srv.URL // nothing listens there any more
				return c
			case connectortest.Rejected:
				return f.connector(t, Spec{Token: "sgp_revoked"})
			case connectortest.RateLimited:
				f.set(func(f *fake) { f.limited = true })
				return f.connector(t, Spec{})
			}
			return nil
		},
	})
}

// run does action a as the worker does: the action, then a poll of its
// handle until it is no longer Pending.
func run(t *testing.T, c *Connector, a connectors.Action, s connectors.Subject) (connectors.Result, string, error) {
	t.Helper()
	res, err := connectors.Run(t.Context(), c, a, s, nil)
	handle := ""
	for polls := 0; err == nil && res.Pending != nil; polls++ {
		if polls == 10 {
			t.Fatalf("%s still pending after %d polls", a, polls)
		}
		if res.Pending.PollAfter != time.Hour {
			t.Errorf("PollAfter = %v; want the default 1h", res.Pending.PollAfter)
		}
		handle = res.Pending.Handle
		res, err = connectors.Poll(t.Context(), c, a, handle, nil)
	}
	return res, handle, err
}

// TestActions: an erasure files SUPPRESS_WITH_DELETE (or DELETE_ONLY) and
// an opt-out SUPPRESS_ONLY for the subject's userIds only; each is polled
// to FINISHED and then reports the workspace and every destination.
func TestActions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		spec       Spec
		action     connectors.Action
		typ        RegulationType
		events     int
		suppressed bool
		outcome    string
	}{
		{"erase", Spec{}, connectors.ActionErase, SuppressWithDelete, 0, true, "deleted"},
		{"erase delete_only", Spec{Erase: "delete_only"}, connectors.ActionErase, DeleteOnly, 0, false, "deleted"},
		{"opt-out", Spec{}, connectors.ActionOptOut, SuppressOnly, 3, true, "suppressed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			seed(f)
			c := f.connector(t, tc.spec)
			res, handle, err := run(t, c, tc.action, ada)
			if err != nil {
				t.Fatal(err)
			}
			typ, ids := f.regulation(handle)
			if typ != tc.typ || len(ids) != 1 || ids[0] != "cus_ada_1" {
				t.Errorf("regulation filed: %s for %v; want %s for [cus_ada_1]", typ, ids, tc.typ)
			}
			if n, s := f.state("cus_ada_1"); n != tc.events || s != tc.suppressed {
				t.Errorf("after %s: %d events, suppressed %v; want %d, %v", tc.name, n, s, tc.events, tc.suppressed)
			}
			if n, s := f.state(bob); n != 2 || s {
				t.Errorf("after %s: Bob has %d events, suppressed %v; want 2, false", tc.name, n, s)
			}
			var names []string
			for _, col := range res.Collections {
				names = append(names, col.Name+"="+col.Outcome)
				if col.Records != 0 || !strings.Contains(col.Note, handle) {
					t.Errorf("collection %s: %d records, note %q; want 0 and the regulation's id", col.Name, col.Records, col.Note)
				}
			}
			want := "segment=" + tc.outcome + " destination:Amplitude (dst_amp_1)=" + tc.outcome + " destination:Braze (dst_braze_2)=" + tc.outcome
			if got := strings.Join(names, " "); got != want {
				t.Errorf("collections %s; want %s", got, want)
			}
		})
	}
}

// TestNoUserID: a subject with no identity of the user_id kinds files no
// regulation; the workspace is reported not searched.
func TestNoUserID(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := f.connector(t, Spec{})
	res, err := c.Erase(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ada@example.com"}}})
	if err != nil || res.Pending != nil || len(res.Collections) != 1 || res.Collections[0].Outcome != connectors.OutcomeNotSearched {
		t.Fatalf("Erase = %+v, %v; want the workspace not searched", res, err)
	}
	if f.created != 0 {
		t.Errorf("%d regulations filed; want none", f.created)
	}
}

// TestUserIDKinds: user_id names the kinds whose values are userIds; all of
// them, once each, go in one regulation.
func TestUserIDKinds(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := f.connector(t, Spec{UserID: []string{"email", "customer_id"}})
	s := ada
	s.Identities = append(s.Identities, connectors.Identity{Kind: "customer_id", Value: "cus_ada_1"})
	_, handle, err := run(t, c, connectors.ActionOptOut, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, ids := f.regulation(handle); strings.Join(ids, ",") != "ada@example.com,cus_ada_1" {
		t.Errorf("subjectIds %v; want [ada@example.com cus_ada_1]", ids)
	}
}

// TestUnsuccessful: a regulation that ends PARTIAL_SUCCESS, FAILED or
// NOT_SUPPORTED fails the job for good (the request needs attention), with
// every destination's status in the error, and no userId.
func TestUnsuccessful(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		final Status
		want  []string
	}{
		{StatusPartialSuccess, []string{"PARTIAL_SUCCESS", "Amplitude (dst_amp_1) FINISHED", "Braze (dst_braze_2) FAILED"}},
		{StatusFailed, []string{"ended FAILED", "Amplitude (dst_amp_1) FAILED", "Braze (dst_braze_2) FAILED"}},
		{StatusNotSupported, []string{"ended NOT_SUPPORTED", "Amplitude (dst_amp_1) NOT_SUPPORTED", "Braze (dst_braze_2) NOT_SUPPORTED"}},
	} {
		t.Run(string(tc.final), func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			seed(f)
			f.set(func(f *fake) { f.final = tc.final })
			c := f.connector(t, Spec{})
			_, handle, err := run(t, c, connectors.ActionErase, ada)
			if !errors.Is(err, connectors.ErrPermanent) {
				t.Fatalf("err = %v; want a permanent error", err)
			}
			msg := err.Error()
			for _, w := range append(tc.want, handle) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, "cus_ada_1") || strings.Contains(msg, "ada@example.com") {
				t.Errorf("error quotes the subject: %s", msg)
			}
		})
	}
}

// TestRateLimited: a 429 is a RetryAfter for the delay Retry-After gives,
// when creating and when polling; X-RateLimit-Reset and the body's
// msBeforeNext are read when it is absent.
func TestRateLimited(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := f.connector(t, Spec{})
	res, err := c.OptOut(t.Context(), ada)
	if err != nil || res.Pending == nil {
		t.Fatalf("OptOut = %+v, %v", res, err)
	}
	f.set(func(f *fake) { f.limited = true })
	for name, call := range map[string]func() error{
		"create": func() error { _, err := c.OptOut(t.Context(), ada); return err },
		"poll": func() error {
			_, err := c.Poll(t.Context(), connectors.ActionOptOut, res.Pending.Handle, nil)
			return err
		},
	} {
		err := call()
		if d, ok := connectors.RetryDelay(err); !ok || d != 58*time.Second || errors.Is(err, connectors.ErrPermanent) {
			t.Errorf("%s while limited: %v; want a RetryAfter of 58s", name, err)
		}
	}

	now := time.Date(2026, 11, 30, 14, 59, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		header http.Header
		body   string
		want   time.Duration
	}{
		{"reset", http.Header{"X-Ratelimit-Reset": {"Mon, 30 Nov 2026 15:00:00 +0000"}}, "", time.Minute},
		{"quota reset", http.Header{"X-Regulation-Ratelimit-Quota-Reset": {"2026-11-30T15:01:00.000Z"}}, "", 2 * time.Minute},
		{"msBeforeNext", http.Header{}, `{"errors":[{"type":"RequestError","message":"Too many requests","data":{"msBeforeNext":5000}}]}`, 5 * time.Second},
		{"nothing", http.Header{}, `{"errors":[{"type":"RequestError","message":"Too many requests"}]}`, time.Minute},
	} {
		err := statusError(&http.Response{StatusCode: http.StatusTooManyRequests, Header: tc.header}, []byte(tc.body), now)
		if d, ok := connectors.RetryDelay(err); !ok || d != tc.want {
			t.Errorf("%s: %v; want a RetryAfter of %v", tc.name, err, tc.want)
		}
	}
}

// TestErrors: Segment's error body is read, a bad request is permanent and
// quotes no userId, a 5xx transient.
func TestErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			writeErr(w, http.StatusBadRequest, "ValidationError", "subjectIds[0] cus_ada_1 is not valid")
			return
		}
		writeErr(w, http.StatusBadGateway, "ServerError", "upstream unavailable")
	}))
	t.Cleanup(srv.Close)
	c, err := New("analytics", Spec{Token: fakeToken}, srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.base = srv.URL
	_, err = c.Erase(t.Context(), ada)
	if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "ValidationError") || strings.Contains(err.Error(), "cus_ada_1") {
		t.Errorf("Erase against a 400: %v; want a permanent error naming ValidationError, not the userId", err)
	}
	_, err = c.Poll(t.Context(), connectors.ActionErase, "rgKsuidAAAAAAAAAAAAAAAAAAAB", nil)
	if err == nil || errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "upstream unavailable") {
		t.Errorf("Poll against a 502: %v; want a transient error", err)
	}
	if _, err := c.Poll(t.Context(), connectors.ActionErase, "../x", nil); !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("Poll of a malformed handle: %v; want a permanent error", err)
	}
}

// TestOptIn: an opt-in files UNSUPPRESS for the subject's userIds only,
// polled to FINISHED, after which Segment collects their data again; the
// result names the workspace and the destinations "unsuppressed". A
// connector whose actions leave opt_in out does not support it.
func TestOptIn(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	seed(f)
	c := f.connector(t, Spec{})
	if _, _, err := run(t, c, connectors.ActionOptOut, ada); err != nil {
		t.Fatal(err)
	}
	if _, suppressed := f.state("cus_ada_1"); !suppressed {
		t.Fatal("after the opt-out, not suppressed")
	}
	res, handle, err := run(t, c, connectors.ActionOptIn, ada)
	if err != nil {
		t.Fatal(err)
	}
	if typ, ids := f.regulation(handle); typ != Unsuppress || len(ids) != 1 || ids[0] != "cus_ada_1" {
		t.Errorf("regulation filed: %s for %v; want UNSUPPRESS for [cus_ada_1]", typ, ids)
	}
	if _, suppressed := f.state("cus_ada_1"); suppressed {
		t.Error("after the opt-in, still suppressed")
	}
	if len(res.Collections) == 0 || res.Collections[0].Outcome != "unsuppressed" {
		t.Errorf("result %+v; want the workspace unsuppressed", res.Collections)
	}
	if !connectors.Supports(c, connectors.ActionOptIn) {
		t.Error("default actions: opt_in not supported")
	}
	only := f.connector(t, Spec{Actions: []string{"erase", "opt_out"}})
	if connectors.Supports(only, connectors.ActionOptIn) {
		t.Error("actions erase, opt_out: opt_in supported")
	}
	if _, err := c.Client().Regulate(t.Context(), Unsuppress, make([]string, MaxSubjectIDs+1)); !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("a regulation of %d userIds: %v; want a permanent error", MaxSubjectIDs+1, err)
	}
}

// TestCheck: Check passes with the token, and fails with another.
func TestCheck(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	if checks := f.connector(t, Spec{}).Check(t.Context()); len(checks) != 1 || !checks[0].Passed() {
		t.Errorf("Check = %+v; want one passed", checks)
	}
	if checks := f.connector(t, Spec{Token: "sgp_revoked"}).Check(t.Context()); len(checks) != 1 || checks[0].Passed() ||
		!strings.Contains(checks[0].Err.Error(), "401") {
		t.Errorf("Check with a revoked token = %+v; want a failure saying 401", checks)
	}
}

// TestSettings: bad settings are refused, naming the setting.
func TestSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{}, "token: required"},
		{Spec{Token: "a b"}, "token: holds white space"},
		{Spec{Token: "t", Region: "asia"}, `region: want us or eu, not "asia"`},
		{Spec{Token: "t", UserID: []string{"anonymous_id"}}, `user_id: unknown identity kind "anonymous_id"`},
		{Spec{Token: "t", UserID: []string{"email", "email"}}, `user_id: "email" given twice`},
		{Spec{Token: "t", Erase: "suppress"}, `erase: want suppress_with_delete or delete_only, not "suppress"`},
		{Spec{Token: "t", Actions: []string{"export"}}, `actions: unknown action "export" (segment does erase, opt_out and opt_in; it cannot export`},
		{Spec{Token: "t", Actions: []string{"erase", "erase"}}, `actions: "erase" given twice`},
		{Spec{Token: "t", PollEvery: "10s"}, `poll_every: want a duration from 1m0s to 24h0m0s, not "10s"`},
	} {
		_, err := New("analytics", tc.spec, nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v; want %q", tc.spec, err, tc.want)
		}
	}
	c, err := New("analytics", Spec{Token: "t", Region: "eu", Actions: []string{"opt_out"}}, nil, nil)
	if err != nil || c.base != "https://eu1.api.segmentapis.com" || c.Handles(connectors.ActionErase) || !c.Handles(connectors.ActionOptOut) {
		t.Errorf("eu, opt_out only: %+v, %v", c, err)
	}
}

// TestRealSegment checks a real workspace when DSAR_TEST_SEGMENT_TOKEN holds
// a Public API token (DSAR_TEST_SEGMENT_REGION: us or eu, default us). It
// files no regulation: it reads the workspace's regulations (Check) and
// asks for one that does not exist, which must be a permanent error, not
// an authentication failure.
func TestRealSegment(t *testing.T) {
	token := os.Getenv("DSAR_TEST_SEGMENT_TOKEN")
	if token == "" {
		t.Skip("DSAR_TEST_SEGMENT_TOKEN is not set: the test against a real Segment workspace is skipped")
	}
	c, err := New("segment-live", Spec{Token: token, Region: os.Getenv("DSAR_TEST_SEGMENT_REGION")}, &http.Client{Timeout: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range c.Check(t.Context()) {
		if !ch.Passed() {
			t.Errorf("%s: %v", ch.What, ch.Err)
		}
	}
	_, err = c.Poll(t.Context(), connectors.ActionErase, "0000000000000000000000000dsar", nil)
	if err == nil || strings.Contains(err.Error(), " 401 ") || strings.Contains(err.Error(), " 403 ") {
		t.Errorf("Poll of an unknown regulation: %v; want an error other than an authentication failure", err)
	}
}

// TestRedirectNotFollowed: a 3xx is a permanent error, never followed: a
// followed 302 would send the POST as a GET to another host, whose answer
// would pass for a regulation filed (and then FINISHED).
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":{"regulateId":"rgKsuidAAAAAAAAAAAAAAAAAAAC","regulation":{"id":"rgKsuidAAAAAAAAAAAAAAAAAAAC","overallStatus":"FINISHED"}}}`))
	}))
	t.Cleanup(other.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	c, err := New("analytics", Spec{Token: fakeToken}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.base = redirector.URL
	res, err := c.Erase(t.Context(), ada)
	if !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("Erase redirected elsewhere = %+v, %v; want a permanent error", res.Pending, err)
	}
	res, err = c.Poll(t.Context(), connectors.ActionErase, "rgKsuidAAAAAAAAAAAAAAAAAAAC", nil)
	if !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("Poll redirected elsewhere = %+v, %v; want a permanent error", res, err)
	}
}
