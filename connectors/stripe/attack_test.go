package stripe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
)

// TestLookupIgnoresCase: a customer stored with a differently-cased email
// is found (by the search); one created a moment ago, not yet searchable,
// is found by the list; addresses the search's word match also returns
// (ada@example.com.au, x.ada@example.com) are not the subject's and are
// left alone.
func TestLookupIgnoresCase(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	seed(f)
	f.add(person{id: "cus_ada2", email: "Ada@Example.COM", name: "Ada L"})
	f.add(person{id: "cus_ada3", email: ada.email, name: "Ada new"})
	f.add(person{id: "cus_au", email: "ada@example.com.au", name: "Other"})
	f.add(person{id: "cus_xada", email: "x.ada@example.com", name: "Other"})
	f.set(func(f *fake) { f.unindexed["cus_ada3"] = true })
	c := f.connector(t, Spec{})
	rec := recorder{}
	if _, err := c.Export(t.Context(), subject, rec); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rec[Customers] {
		for _, id := range []string{"cus_ada1", "cus_ada2", "cus_ada3", "cus_au", "cus_xada", "cus_bob2"} {
			if strings.Contains(d, `"`+id+`"`) {
				got = append(got, id)
			}
		}
	}
	if fmt.Sprint(got) != "[cus_ada1 cus_ada2 cus_ada3]" {
		t.Errorf("exported customers %v; want cus_ada1, cus_ada2 (other case), cus_ada3 (not yet searchable)", got)
	}
	f.set(func(f *fake) {
		if len(f.queries) != 2 || f.queries[0] != `email:"ada@example.com"` || f.queries[1] != f.queries[0] {
			t.Errorf("search queries %q; want email:\"ada@example.com\" over two pages", f.queries)
		}
	})
	res, _, err := run(t, c, connectors.ActionErase, subject, nil)
	if err != nil || res.Records != 3 {
		t.Fatalf("erase: %v, %+v; want 3 customers deleted", err, res)
	}
	if f.holds("ada@example.com.au") == 0 || f.holds("x.ada@example.com") == 0 || f.holds(bob.email) == 0 {
		t.Error("an erasure deleted another person's customer")
	}

	// search: false: the list alone, case-sensitive.
	f2 := newFake(t)
	f2.add(person{id: "cus_ada2", email: "Ada@Example.COM", name: "Ada L"})
	off := false
	rec = recorder{}
	if _, err := f2.connector(t, Spec{Search: &off}).Export(t.Context(), subject, rec); err != nil || len(rec[Customers]) != 0 {
		t.Errorf("search off: %v, %d customers; want none found and no search", err, len(rec[Customers]))
	}
	if len(f2.queries) != 0 {
		t.Errorf("search off, yet searched: %q", f2.queries)
	}
}

// TestSearchQueryEscaping: a quote in an email is escaped as the search
// language documents, so it cannot end the value and add a clause; a
// backslash (which the language gives no escape) keeps the email out of
// the search; plus and percent signs reach Stripe as they are.
func TestSearchQueryEscaping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		email, query string
		searched     bool
	}{
		{`o"hara@example.com`, `email:"o\"hara@example.com"`, true},
		{`x" OR email:"bob@example.com`, `email:"x\" OR email:\"bob@example.com"`, true},
		{`a+b%41c@example.com`, `email:"a+b%41c@example.com"`, true},
		{`x\"@example.com`, "", false},
		{`x\`, "", false},
		{"x\n@example.com", "", false},
	} {
		q, ok := EmailQuery(tc.email)
		if q != tc.query || ok != tc.searched {
			t.Errorf("EmailQuery(%q) = %q, %v; want %q, %v", tc.email, q, ok, tc.query, tc.searched)
		}
	}
	f := newFake(t)
	seed(f)
	f.add(person{id: "cus_ohara", email: `O"Hara@example.com`, name: "O"})
	f.add(person{id: "cus_plus", email: `a+b%41c@example.com`, name: "P"})
	c := f.connector(t, Spec{})
	for _, tc := range []struct {
		email string
		want  []string
	}{
		{`o"hara@example.com`, []string{"cus_ohara"}},
		{`x" OR email:"bob@example.com`, nil},
		{`a+b%41c@example.com`, []string{"cus_plus"}},
		{`x\" OR email:\"bob@example.com`, nil},
	} {
		custs, err := c.customers(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: tc.email}}})
		var ids []string
		for _, cu := range custs {
			ids = append(ids, cu.id)
		}
		if err != nil || !slices.Equal(ids, tc.want) {
			t.Errorf("customers(%q) = %v, %v; want %v", tc.email, ids, err, tc.want)
		}
	}
}

// TestRedactionPreviewVersion: the redaction job calls carry the preview
// API version (without it the fake, like an account, does not know the
// URL), the others the pinned version; a redaction_version that is not a
// preview is refused.
func TestRedactionPreviewVersion(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	seed(f)
	c := f.connector(t, Spec{Erase: EraseRedact, RedactionVersion: "2025-09-30.preview"})
	if _, _, err := run(t, c, connectors.ActionErase, subject, nil); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fake) {
		if fmt.Sprint(f.previewVersions) != "map[2025-09-30.preview:true]" || fmt.Sprint(f.versions) != "map["+DefaultStripeVersion+":true]" {
			t.Errorf("versions: redaction %v, others %v", f.previewVersions, f.versions)
		}
	})
	if _, err := New("p", Spec{SecretKey: "sk_test_x", RedactionVersion: DefaultStripeVersion}, nil, nil); err == nil || !strings.Contains(err.Error(), "redaction_version") {
		t.Errorf("a redaction_version that is no preview: %v", err)
	}
	c2, err := New("p", Spec{SecretKey: "sk_test_x"}, nil, nil)
	if err != nil || c2.preview != DefaultRedactionVersion {
		t.Errorf("default redaction version: %v, %q", err, c2.preview)
	}
	// Without the preview version Stripe does not know the endpoint: the
	// erasure fails for good, saying so.
	f2 := newFake(t)
	seed(f2)
	c3 := f2.connector(t, Spec{Erase: EraseRedact})
	c3.preview = "2025-05-28.basil"
	if _, err := c3.Erase(t.Context(), subject); !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "Unrecognized request URL") {
		t.Errorf("redaction under a GA version: %v", err)
	}
}

// TestAttacks: what a hostile or broken answer can make the connector do.
func TestAttacks(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a call reached another host: %s %s", r.Method, r.URL)
	}))
	t.Cleanup(other.Close)
	for _, tc := range []struct {
		name   string
		redact bool
		hook   func(f *fake, w http.ResponseWriter, r *http.Request) bool
		action connectors.Action
		check  func(t *testing.T, f *fake, err error)
	}{
		{"redirect on a delete", false, func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodDelete {
				http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
				return true
			}
			return false
		}, connectors.ActionErase, permanentSaying("redirect refused")},
		{"redirect on a read", false, func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusMovedPermanently)
			return true
		}, connectors.ActionExport, permanentSaying("redirect refused")},
		{"huge body", false, func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			_, _ = w.Write([]byte(`{"object":"list","data":[` + strings.Repeat(`{"id":"cus_x","object":"customer"},`, maxBody/35+10) + `{}]}`))
			return true
		}, connectors.ActionExport, permanentSaying("over")},
		{"non-JSON 200", false, func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			_, _ = w.Write([]byte("<html>" + ada.email + "</html>"))
			return true
		}, connectors.ActionExport, permanentSaying("not the documented JSON")},
		{"customer id with a path", false, func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/v1/customers" {
				writeJSON(w, http.StatusOK, map[string]any{"object": "list", "has_more": false,
					"data": []any{map[string]any{"id": "../charges?x=1", "object": "customer", "email": ada.email}}})
				return true
			}
			t.Errorf("a call after a bad id: %s %s", r.Method, r.URL)
			return false
		}, connectors.ActionErase, permanentSaying("valid id")},
		{"search next_page that repeats", false, func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/v1/customers/search" {
				writeJSON(w, http.StatusOK, map[string]any{"object": "search_result", "has_more": true, "next_page": "same", "data": []any{}})
				return true
			}
			return false
		}, connectors.ActionExport, func(t *testing.T, f *fake, err error) {
			if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "next_page") {
				t.Errorf("err = %v", err)
			}
		}},
		{"redaction job id with a path", true, func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPost && r.URL.Path == "/v1/privacy/redaction_jobs" {
				writeJSON(w, http.StatusOK, map[string]any{"id": "prj_1/../../customers", "object": "privacy.redaction_job", "status": "created"})
				return true
			}
			return false
		}, connectors.ActionErase, permanentSaying("without a job id")},
		{"error quoting the subject in another case", false, func(f *fake, w http.ResponseWriter, r *http.Request) bool {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "email_invalid", "The email ADA@EXAMPLE.COM (or 'Ada@Example.com') is invalid.", "email")
			return true
		}, connectors.ActionExport, permanentSaying("[email]")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			seed(f)
			f.set(func(ff *fake) {
				ff.hook = func(w http.ResponseWriter, r *http.Request) bool { return tc.hook(f, w, r) }
			})
			spec := Spec{}
			if tc.redact {
				spec.Erase = EraseRedact
			}
			c := f.connector(t, spec)
			logs := &bytes.Buffer{}
			c.log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			_, err := connectors.Run(t.Context(), c, tc.action, subject, recorder{})
			if err == nil {
				t.Fatal("no error")
			}
			tc.check(t, f, err)
			if strings.Contains(strings.ToLower(err.Error()), ada.email) || strings.Contains(logs.String(), "@") {
				t.Errorf("the subject's email in the error or the logs: %v\n%s", err, logs.String())
			}
		})
	}
}

func permanentSaying(s string) func(t *testing.T, _ *fake, err error) {
	return func(t *testing.T, _ *fake, err error) {
		t.Helper()
		if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), s) {
			t.Errorf("err = %v; want a permanent error saying %q", err, s)
		}
	}
}

// TestRedactionNeverFinishes: a job Stripe leaves redacting keeps the
// erasure waiting on the same handle; what it says at its deadline names
// the job, never the subject.
func TestRedactionNeverFinishes(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	seed(f)
	f.set(func(ff *fake) {
		ff.hook = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/privacy/redaction_jobs/") {
				writeJSON(w, http.StatusOK, map[string]any{"id": strings.TrimPrefix(r.URL.Path, "/v1/privacy/redaction_jobs/"), "object": "privacy.redaction_job", "status": JobRedacting})
				return true
			}
			return false
		}
	})
	c := f.connector(t, Spec{Erase: EraseRedact})
	res, err := c.Erase(t.Context(), subject)
	if err != nil || res.Pending == nil {
		t.Fatalf("Erase: %+v, %v", res, err)
	}
	h := res.Pending.Handle
	for range 20 {
		res, err = c.Poll(t.Context(), connectors.ActionErase, h, nil)
		if err != nil || res.Pending == nil || res.Pending.Handle != h {
			t.Fatalf("poll: %+v, %v; want still waiting on %s", res, err, h)
		}
	}
	if !strings.Contains(res.Pending.Unanswered, h) || !strings.Contains(res.Pending.Unanswered, JobRedacting) || strings.Contains(res.Pending.Unanswered, "@") {
		t.Errorf("Unanswered = %q", res.Pending.Unanswered)
	}
}

// keyLimiter answers Take with the waits in waits[key] one after the
// other, then 0; it records every key and rate asked.
type keyLimiter struct {
	mu    sync.Mutex
	waits map[string][]time.Duration
	taken map[string]bool
}

func (l *keyLimiter) Take(_ context.Context, key string, r connectors.Rate) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.taken[key+"="+r.String()] = true
	if w := l.waits[key]; len(w) > 0 {
		l.waits[key] = w[1:]
		return w[0], nil
	}
	return 0, nil
}

// TestPacing: through Deps.Limiter, searches count against the search
// limit (20/s), other reads and writes against the test mode's 25/s; a
// short wait is slept, a long one is a RetryAfter before the call.
func TestPacing(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	seed(f)
	l := &keyLimiter{taken: map[string]bool{}, waits: map[string][]time.Duration{
		"payments/search": {50 * time.Millisecond},
		"payments/write":  {10 * time.Second},
	}}
	var node yaml.Node
	if err := yaml.Unmarshal([]byte("secret_key: "+fakeKey), &node); err != nil {
		t.Fatal(err)
	}
	conn, err := Factory(connectors.Deps{HTTP: f.srv.Client(), Limiter: l})(t.Context(), "payments", node.Content[0])
	if err != nil {
		t.Fatal(err)
	}
	c := conn.(*Connector)
	c.base = f.srv.URL
	if _, err := c.Export(t.Context(), subject, recorder{}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"payments/search=20/s", "payments/read=25/s"} {
		if !l.taken[k] {
			t.Errorf("limiter asked %v; want %s", l.taken, k)
		}
	}
	_, err = c.Erase(t.Context(), subject)
	if d, ok := connectors.RetryDelay(err); !ok || d != 10*time.Second || errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("erase with the write limit spent: %v; want RetryAfter 10s", err)
	}
	if f.holds(ada.email) == 0 || !l.taken["payments/write=25/s"] {
		t.Error("a customer was deleted past the limiter")
	}
	live := &Client{Key: "sk_live_x", Limiter: l, LimitKey: "live"}
	if err := live.pace(t.Context(), http.MethodGet, "/v1/charges"); err != nil || !l.taken["live/read=100/s"] {
		t.Errorf("live key: %v, %v; want live/read=100/s", err, l.taken)
	}
}
