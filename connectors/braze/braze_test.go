package braze_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/braze"
	"github.com/dsar-project/dsar/connectors/connectortest"
)

const group = "b1b9a0e0-6329-4df2-a465-53347f410662"

// newConnector returns a connector called braze for the fake at url.
func newConnector(t testing.TB, url, key string, s braze.Spec) *braze.Connector {
	t.Helper()
	s.URL, s.APIKey, s.AllowInsecure = url, key, true
	c, err := braze.New("braze", s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var optOutAll = &braze.OptOutSpec{Email: true, SubscriptionGroups: []string{group}}

// TestConformance runs the connector conformance suite against the fake:
// Ada has a profile with her customer id and an anonymous one with only her
// email; Bob, the other person, shares the subscription group with her.
func TestConformance(t *testing.T) {
	t.Parallel()
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T) (connectors.Connector, *connectortest.Fixture) {
			f, url := newFake(t)
			var bobID, bobSeeded string
			ada := func(u map[string]any) bool { return u["external_id"] == "cus_ada_1" || u["email"] == "ada@example.com" }
			return newConnector(t, url, fakeKey, braze.Spec{OptOut: optOutAll}), &connectortest.Fixture{
				Subject: connectors.Subject{Identities: []connectors.Identity{
					{Kind: "email", Value: "ada@example.com"}, {Kind: "customer_id", Value: "cus_ada_1"},
				}},
				OtherValues: []string{"bob@example.com", "cus_bob_2", "Bob"},
				Seed: func(context.Context) {
					f.addUser(map[string]any{"external_id": "cus_ada_1", "email": "ada@example.com", "first_name": "Ada", "phone": "+15550100",
						"custom_attributes": map[string]any{"loyaltyPoints": 321}})
					f.addUser(map[string]any{"email": "ada@example.com", "user_aliases": []alias{{Name: "anon_77", Label: "web"}}})
					bobID = f.addUser(map[string]any{"external_id": "cus_bob_2", "email": "bob@example.com", "first_name": "Bob"})
					bobSeeded = f.userJSON(bobID)
					f.subscribe(group, "cus_ada_1", "Subscribed")
					f.subscribe(group, "cus_bob_2", "Subscribed")
				},
				SubjectRecords: func(context.Context) int {
					f.mu.Lock()
					defer f.mu.Unlock()
					return f.each(ada, func(map[string]any) {})
				},
				OtherRecords: func(context.Context) int {
					n := 0
					if f.userJSON(bobID) == bobSeeded {
						n++
					}
					f.mu.Lock()
					defer f.mu.Unlock()
					if f.groups[group]["cus_bob_2"] == "Subscribed" {
						n++
					}
					return n
				},
				InSegment: func(context.Context) bool {
					f.mu.Lock()
					defer f.mu.Unlock()
					return f.groups[group]["cus_ada_1"] == "Subscribed"
				},
				OptedOut: func(context.Context) bool {
					f.mu.Lock()
					defer f.mu.Unlock()
					all := true
					n := f.each(ada, func(u map[string]any) { all = all && u["email_subscribe"] == "unsubscribed" })
					return n > 0 && all
				},
				Export: map[string]int64{braze.CollectionUsers: 2},
				Erase:  map[string]int64{braze.CollectionUsers: 2},
				OptOut: map[string]int64{braze.CollectionEmail: 2, braze.GroupPrefix + group: 1},
			}
		},
		Fault: func(t *testing.T, fault connectortest.Fault) connectors.Connector {
			switch fault {
			case connectortest.Unreachable:
				srv := httptest.NewServer(http.NotFoundHandler())
				srv.Close() // nothing listens there any more
				return newConnector(t, srv.URL, fakeKey, braze.Spec{OptOut: optOutAll})
			case connectortest.Rejected:
				_, url := newFake(t)
				return newConnector(t, url, "a-key-braze-does-not-know", braze.Spec{OptOut: optOutAll})
			case connectortest.RateLimited:
				f, url := newFake(t)
				f.limited, f.retryAfter, f.resetAt = true, "7", time.Now().Add(40*time.Second)
				return newConnector(t, url, fakeKey, braze.Spec{OptOut: optOutAll})
			}
			return nil
		},
	})
}

// TestEraseBatches: a subject with 120 customer ids has 120 profiles found
// in calls of at most 50 external_ids and deleted in calls of at most 50
// identifiers of one kind.
func TestEraseBatches(t *testing.T) {
	t.Parallel()
	f, url := newFake(t)
	var s connectors.Subject
	for i := range 120 {
		id := fmt.Sprintf("cus_%03d", i)
		f.addUser(map[string]any{"external_id": id})
		s.Identities = append(s.Identities, connectors.Identity{Kind: "customer_id", Value: id})
	}
	other := f.addUser(map[string]any{"external_id": "cus_other"})
	c := newConnector(t, url, fakeKey, braze.Spec{})

	res, err := c.Erase(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 120 {
		t.Errorf("Erase reported %d records; want 120", res.Records)
	}
	if f.userJSON(other) == "" {
		t.Error("Erase deleted the other person's profile")
	}
	for _, path := range []string{"/users/export/ids", "/users/delete"} {
		calls := f.callsTo(path)
		if len(calls) != 3 {
			t.Errorf("%d calls to %s; want 3 (50, 50, 20)", len(calls), path)
		}
		total := 0
		for i, c := range calls {
			var kinds []string
			n := 0
			for _, k := range []string{"external_ids", "user_aliases", "braze_ids", "email_addresses", "phone_numbers"} {
				var ids []json.RawMessage
				if raw, ok := c.body[k]; ok {
					if err := json.Unmarshal(raw, &ids); err != nil {
						t.Fatalf("%s call %d: %s: %v", path, i, k, err)
					}
					kinds = append(kinds, k)
					n = len(ids)
				}
			}
			if len(kinds) != 1 || n < 1 || n > braze.BatchSize {
				t.Errorf("%s call %d: %d identifiers of kinds %v; want 1 to %d of one kind", path, i, n, kinds, braze.BatchSize)
			}
			total += n
		}
		if total != 120 {
			t.Errorf("%s calls carried %d identifiers; want 120", path, total)
		}
	}

	res, err = c.Erase(t.Context(), s)
	if err != nil || res.Records != 0 {
		t.Errorf("second Erase: %d records, %v; want 0, nil", res.Records, err)
	}
	if n := len(f.callsTo("/users/delete")); n != 3 {
		t.Errorf("second Erase called /users/delete (%d calls in all); want no call when nothing is found", n)
	}
}

// TestAliasMatch: an identity kind mapped to alias:LABEL finds the profile
// by that user alias.
func TestAliasMatch(t *testing.T) {
	t.Parallel()
	f, url := newFake(t)
	f.addUser(map[string]any{"user_aliases": []alias{{Name: "amp_1", Label: "amplitude_id"}}, "first_name": "Ada"})
	f.addUser(map[string]any{"user_aliases": []alias{{Name: "amp_1", Label: "other"}}, "first_name": "Bob"})
	c := newConnector(t, url, fakeKey, braze.Spec{Match: map[string]string{"customer_id": "alias:amplitude_id"}})
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "customer_id", Value: "amp_1"}}}
	w := &records{}
	res, err := c.Export(t.Context(), s, w)
	if err != nil || res.Records != 1 || len(w.docs) != 1 || !strings.Contains(w.docs[0], "Ada") {
		t.Fatalf("Export: %+v, %v, %v; want Ada's profile alone", res, w.docs, err)
	}
	res, err = c.Erase(t.Context(), s)
	if err != nil || res.Records != 1 {
		t.Fatalf("Erase: %+v, %v", res, err)
	}
}

// TestNotSearched: a subject with no identity the connector matches on is
// reported not searched, and nothing is called.
func TestNotSearched(t *testing.T) {
	t.Parallel()
	f, url := newFake(t)
	c := newConnector(t, url, fakeKey, braze.Spec{Match: map[string]string{"customer_id": "external_id"}})
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ada@example.com"}}}
	res, err := c.Erase(t.Context(), s)
	if err != nil || len(res.Collections) != 1 || res.Collections[0].Outcome != connectors.OutcomeNotSearched {
		t.Fatalf("Erase: %+v, %v; want users not searched", res, err)
	}
	if len(f.callsTo("/users/export/ids")) != 0 {
		t.Error("Erase called Braze for a subject it cannot match")
	}
}

// TestRateLimited: a 429 asks to come back as Retry-After says, else at
// X-RateLimit-Reset; and is never permanent.
func TestRateLimited(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, retryAfter string
		reset            time.Duration
		want             time.Duration
	}{
		{"Retry-After", "7", 40 * time.Second, 7 * time.Second},
		{"X-RateLimit-Reset", "", 42 * time.Second, 42 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, url := newFake(t)
			f.limited, f.retryAfter, f.resetAt = true, tc.retryAfter, time.Now().Add(tc.reset)
			c := newConnector(t, url, fakeKey, braze.Spec{})
			_, err := c.Export(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "customer_id", Value: "cus_1"}}}, &records{})
			d, ok := connectors.RetryDelay(err)
			if !ok || errors.Is(err, connectors.ErrPermanent) {
				t.Fatalf("err = %v; want a RetryAfter error", err)
			}
			if d < tc.want-2*time.Second || d > tc.want+time.Second {
				t.Errorf("delay %v; want about %v", d, tc.want)
			}
		})
	}
}

// fakeLimiter refuses every event, asking to wait.
type fakeLimiter struct{ key string }

func (l *fakeLimiter) Take(_ context.Context, key string, r connectors.Rate) (time.Duration, error) {
	l.key = key + " " + r.String()
	return 9 * time.Second, nil
}

// TestExportRate: calls to /users/export/ids are paced by the shared
// limiter at export_rate; a spent rate is a RetryAfter, and no call is made.
func TestExportRate(t *testing.T) {
	t.Parallel()
	f, url := newFake(t)
	lim := &fakeLimiter{}
	factory := braze.Factory(connectors.Deps{Limiter: lim})
	reg, err := connectors.Parse(t.Context(), []byte(`connectors:
  - name: engage
    type: braze
    url: `+url+`
    api_key: ${BRAZE_KEY}
    allow_insecure: true
    export_rate: 100/m
`), connectors.Types{braze.Type: factory}, func(string) (string, bool) { return fakeKey, true })
	if err != nil {
		t.Fatal(err)
	}
	c, _ := reg.Lookup("engage")
	_, err = c.(connectors.Exporter).Export(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "customer_id", Value: "cus_1"}}}, &records{})
	if d, ok := connectors.RetryDelay(err); !ok || d != 9*time.Second {
		t.Errorf("err = %v; want RetryAfter 9s", err)
	}
	if lim.key != "engage/users/export/ids 100/m" {
		t.Errorf("limiter took %q; want engage/users/export/ids 100/m", lim.key)
	}
	if n := len(f.callsTo("/users/export/ids")); n != 0 {
		t.Errorf("%d calls made past a spent rate", n)
	}
}

// TestSettings: bad settings are refused with an error naming the setting
// and its line.
func TestSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, entry, want string }{
		{"no url", "api_key: ${K}", "line 2: url: required"},
		{"http", "url: http://rest.iad-01.braze.com\n    api_key: ${K}", "line 4: url: must be https"},
		{"no key", "url: https://rest.iad-01.braze.com", "line 2: api_key: required"},
		{"literal key", "url: https://rest.iad-01.braze.com\n    api_key: abc", "api_key must come from the environment"},
		{"kind", "url: https://rest.iad-01.braze.com\n    api_key: ${K}\n    match: {user_id: external_id}", `line 6: match: unknown identity kind "user_id"`},
		{"identifier", "url: https://rest.iad-01.braze.com\n    api_key: ${K}\n    match: {email: mail}", `line 6: match: email: want external_id`},
		{"field", "url: https://rest.iad-01.braze.com\n    api_key: ${K}\n    fields_to_export: [ssn]", `line 6: fields_to_export: unknown field "ssn"`},
		{"opt-out empty", "url: https://rest.iad-01.braze.com\n    api_key: ${K}\n    opt_out: {email: false}", "line 6: opt_out: set email: true"},
		{"opt-out action", "url: https://rest.iad-01.braze.com\n    api_key: ${K}\n    actions: [opt_out]", "line 6: actions: opt_out needs the opt_out setting"},
		{"group", "url: https://rest.iad-01.braze.com\n    api_key: ${K}\n    opt_out: {subscription_groups: [\"a b\"]}", "line 6: opt_out.subscription_groups"},
		{"rate", "url: https://rest.iad-01.braze.com\n    api_key: ${K}\n    export_rate: fast", "line 6: export_rate"},
		{"timeout", "url: https://rest.iad-01.braze.com\n    api_key: ${K}\n    timeout: 1h", "line 6: timeout"},
		{"typo", "url: https://rest.iad-01.braze.com\n    api_key: ${K}\n    api_url: x", `line 6: unknown setting "api_url"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := "connectors:\n  - name: engage\n    type: braze\n    " + tc.entry + "\n"
			_, err := connectors.Parse(t.Context(), []byte(file), connectors.Types{braze.Type: braze.Factory(connectors.Deps{})},
				func(string) (string, bool) { return "k", true })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v; want one saying %q", err, tc.want)
			}
		})
	}
}

// TestScope: opt_out is handled only with opt-out settings.
func TestScope(t *testing.T) {
	t.Parallel()
	c := newConnector(t, "http://127.0.0.1:1", fakeKey, braze.Spec{})
	if !c.Handles(connectors.ActionExport) || !c.Handles(connectors.ActionErase) || c.Handles(connectors.ActionOptOut) {
		t.Error("without opt_out: want export and erase only")
	}
	c = newConnector(t, "http://127.0.0.1:1", fakeKey, braze.Spec{Actions: []string{"opt_out"}, OptOut: optOutAll})
	if c.Handles(connectors.ActionExport) || c.Handles(connectors.ActionErase) || !c.Handles(connectors.ActionOptOut) {
		t.Error("actions [opt_out]: want opt_out only")
	}
}

// TestLive runs read-only calls against a real Braze workspace: the export
// and the erasure of a person Braze cannot know find nothing. It needs
// DSAR_TEST_BRAZE_URL (the REST endpoint) and DSAR_TEST_BRAZE_KEY (a REST
// API key with users.export.ids and users.delete).
func TestLive(t *testing.T) {
	url, key := os.Getenv("DSAR_TEST_BRAZE_URL"), os.Getenv("DSAR_TEST_BRAZE_KEY")
	if url == "" || key == "" {
		t.Skip("DSAR_TEST_BRAZE_URL and DSAR_TEST_BRAZE_KEY are not both set: no real Braze workspace to test against")
	}
	c, err := braze.New("braze", braze.Spec{URL: url, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	nobody := "dsar-test-" + hex.EncodeToString(b)
	s := connectors.Subject{Identities: []connectors.Identity{
		{Kind: "email", Value: nobody + "@example.com"}, {Kind: "customer_id", Value: nobody},
	}}
	w := &records{}
	if res, err := c.Export(t.Context(), s, w); err != nil || res.Records != 0 || len(w.docs) != 0 {
		t.Errorf("Export of nobody: %+v, %v; want 0 records", res, err)
	}
	if res, err := c.Erase(t.Context(), s); err != nil || res.Records != 0 {
		t.Errorf("Erase of nobody: %+v, %v; want 0 records", res, err)
	}
}

// records is a RecordWriter keeping each record as JSON.
type records struct{ docs []string }

func (r *records) WriteRecord(_ context.Context, _ string, doc any) error {
	b, err := json.Marshal(doc)
	r.docs = append(r.docs, string(b))
	return err
}

// TestErrorBody: Braze's error message is quoted with the subject's
// identifiers blanked out, and a 400 is permanent.
func TestErrorBody(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fail(w, http.StatusBadRequest, "Invalid email_address ada@example.com", "ada@example.com is not valid")
	}))
	t.Cleanup(srv.Close)
	c := newConnector(t, srv.URL, fakeKey, braze.Spec{})
	_, err := c.Export(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ada@example.com"}}}, &records{})
	if err == nil || !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("err = %v; want a permanent error", err)
	}
	if msg := err.Error(); strings.Contains(msg, "ada@") || !strings.Contains(msg, "400") || !strings.Contains(msg, "Invalid email_address [redacted]") || !strings.Contains(msg, "(errors listed: 1)") {
		t.Errorf("err = %q; want the status and the message without the address", msg)
	}
}

// TestOptOutBatches: 60 addresses and 60 profiles are unsubscribed in calls
// of at most 50, and a second opt-out changes and reports nothing.
func TestOptOutBatches(t *testing.T) {
	t.Parallel()
	f, url := newFake(t)
	var s connectors.Subject
	for i := range 60 {
		id, email := fmt.Sprintf("cus_%03d", i), fmt.Sprintf("p%03d@example.com", i)
		f.addUser(map[string]any{"external_id": id, "email": email})
		f.subscribe(group, id, "Subscribed")
		s.Identities = append(s.Identities, connectors.Identity{Kind: "customer_id", Value: id})
	}
	c := newConnector(t, url, fakeKey, braze.Spec{OptOut: optOutAll})
	res, err := c.OptOut(t.Context(), s)
	if err != nil || res.Records != 120 {
		t.Fatalf("OptOut: %+v, %v; want 60 addresses and 60 group members", res, err)
	}
	for _, path := range []string{"/email/status", "/subscription/status/get", "/v2/subscription/status/set"} {
		if n := len(f.callsTo(path)); n != 2 {
			t.Errorf("%d calls to %s; want 2 (50 and 10)", n, path)
		}
	}
	res, err = c.OptOut(t.Context(), s)
	if err != nil || res.Records != 0 {
		t.Errorf("second OptOut: %+v, %v; want 0 records", res, err)
	}
	if n := len(f.callsTo("/v2/subscription/status/set")); n != 2 {
		t.Errorf("second OptOut set subscription states again (%d calls in all)", n)
	}
}

// TestRedirectNotFollowed: a 3xx is a permanent error, never followed: a
// followed 302 would send the calls as GETs to another host, whose 200
// would count the profiles deleted.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"users":[{"braze_id":"5e1f0000000000000000abcd"}],"deleted":1,"message":"success"}`))
	}))
	t.Cleanup(other.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	c := newConnector(t, redirector.URL, "key", braze.Spec{})
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ada@example.com"}}}
	res, err := c.Erase(t.Context(), s)
	if err == nil || !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("Erase redirected elsewhere = %d records, %v; want a permanent error", res.Records, err)
	}
}

// TestErrorRedactsFoundProfiles: an error Braze writes about an address the
// lookup found on the subject's profile (not one the request gave), in any
// case, quotes none of it.
func TestErrorRedactsFoundProfiles(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/users/export/ids" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"users":[{"braze_id":"5e1f0000000000000000abcd","external_id":"cus_1","email":"Ada.Other@Example.com"}],"message":"success"}`))
			return
		}
		fail(w, http.StatusBadRequest, "Invalid email ada.other@example.com for profile 5e1f0000000000000000abcd")
	}))
	t.Cleanup(srv.Close)
	c := newConnector(t, srv.URL, fakeKey, braze.Spec{OptOut: optOutAll})
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "customer_id", Value: "cus_1"}}}
	_, err := c.OptOut(t.Context(), s)
	if err == nil || !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("OptOut: %v; want a permanent error", err)
	}
	if msg := strings.ToLower(err.Error()); strings.Contains(msg, "ada.other") || strings.Contains(msg, "5e1f") || !strings.Contains(msg, "invalid email [redacted]") {
		t.Errorf("err = %q; want Braze's message without the profile's address or id", err)
	}
}
