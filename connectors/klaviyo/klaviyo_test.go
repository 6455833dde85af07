package klaviyo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
)

var ada = connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}, {Kind: "phone", Value: adaPhone}}}

// TestConformance runs the conformance suite against the fake account.
func TestConformance(t *testing.T) {
	t.Parallel()
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T) (connectors.Connector, *connectortest.Fixture) {
			f := newFake(t)
			return f.connector(t, Spec{Lists: []string{listID}}), &connectortest.Fixture{
				Subject:        ada,
				OtherValues:    []string{bobEmail, bobID},
				Seed:           func(context.Context) { f.seed() },
				SubjectRecords: func(context.Context) int { return f.records(adaID) },
				OtherRecords:   func(context.Context) int { return f.records(bobID) },
				InSegment: func(context.Context) bool {
					f.mu.Lock()
					defer f.mu.Unlock()
					return f.lists[listID][adaEmail]
				},
				OptedOut: func(context.Context) bool {
					f.mu.Lock()
					defer f.mu.Unlock()
					return f.suppressed[adaEmail]
				},
				Export: map[string]int64{CollProfiles: 1, CollEvents: 3},
				Erase:  map[string]int64{CollProfiles: 1},
				OptOut: map[string]int64{CollSuppressions: 1, collList + listID: 1},
			}
		},
		Fault: func(t *testing.T, fault connectortest.Fault) connectors.Connector {
			f := newFake(t)
			f.seed()
			switch fault {
			case connectortest.Unreachable:
				srv := httptest.NewServer(http.NotFoundHandler())
				srv.Close()
				c := f.connector(t, Spec{})
				c.client.Base = srv.URL // nothing listens there any more
				return c
			case connectortest.Rejected:
				return f.connector(t, Spec{APIKey: "pk_revoked"})
			case connectortest.RateLimited:
				f.set(func(f *fake) { f.limited = true })
				return f.connector(t, Spec{})
			}
			return nil
		},
	})
}

// recorder keeps exported records as JSON.
type recorder struct {
	mu   sync.Mutex
	recs map[string][]string
}

func (r *recorder) WriteRecord(_ context.Context, coll string, doc any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recs == nil {
		r.recs = map[string][]string{}
	}
	r.recs[coll] = append(r.recs[coll], string(b))
	return nil
}

// TestExport: the profile found by email or phone once, and every page of
// its events, followed through links.next; the pinned revision is sent.
func TestExport(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.seed()
	f.set(func(f *fake) {
		f.pageSize = 1
		for i := range 4 {
			f.events[adaID] = append(f.events[adaID], fakeEvent{ID: "more" + string(rune('a'+i))})
		}
	})
	c := f.connector(t, Spec{Revision: "2025-01-15"})
	w := &recorder{}
	res, err := c.Export(t.Context(), ada, w)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int64{CollProfiles: 1, CollEvents: 7}, counts(res)); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if len(w.recs[CollEvents]) != 7 || len(w.recs[CollProfiles]) != 1 || !strings.Contains(w.recs[CollProfiles][0], adaID) {
		t.Errorf("records: %v", w.recs)
	}
	if !f.revisions["2025-01-15"] || len(f.revisions) != 1 {
		t.Errorf("revisions sent: %v; want only 2025-01-15", f.revisions)
	}

	// Nobody by those values: 0 records, no error.
	res, err = c.Export(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "nobody@example.com"}}}, w)
	if err != nil || res.Records != 0 {
		t.Errorf("stranger: %+v, %v", res, err)
	}
	// No email or phone: not searched.
	res, err = c.Export(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "customer_id", Value: "c1"}}}, w)
	if err != nil || len(res.Collections) != 1 || res.Collections[0].Outcome != connectors.OutcomeNotSearched {
		t.Errorf("no email: %+v, %v", res, err)
	}
}

func counts(res connectors.Result) map[string]int64 {
	m := map[string]int64{}
	for _, c := range res.Collections {
		m[c.Name] += c.Records
	}
	return m
}

// TestErasePolls: an erasure files one deletion job per profile and waits;
// polls look the profile up until Klaviyo answers 404.
func TestErasePolls(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.seed()
	f.set(func(f *fake) { f.lag = 2 })
	c := f.connector(t, Spec{PollEvery: "5m"})
	res, err := c.Erase(t.Context(), ada)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pending == nil || res.Pending.Handle != "erase:"+adaID || res.Pending.PollAfter != 5*time.Minute {
		t.Fatalf("Erase: %+v; want Pending on erase:%s every 5m", res.Pending, adaID)
	}
	if f.deletions != 1 {
		t.Errorf("%d deletion jobs; want 1 (the profile found by email and phone once)", f.deletions)
	}
	for i := range 2 {
		res, err = c.Poll(t.Context(), connectors.ActionErase, res.Pending.Handle, nil)
		if err != nil || res.Pending == nil {
			t.Fatalf("poll %d: %+v, %v; want still Pending", i, res, err)
		}
		if strings.Contains(res.Pending.Unanswered, adaEmail) {
			t.Errorf("Unanswered quotes the subject: %s", res.Pending.Unanswered)
		}
	}
	res, err = c.Poll(t.Context(), connectors.ActionErase, res.Pending.Handle, nil)
	if err != nil || res.Pending != nil {
		t.Fatalf("last poll: %+v, %v; want done", res, err)
	}
	if diff := cmp.Diff(map[string]int64{CollProfiles: 1}, counts(res)); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if f.records(adaID) != 0 || f.records(bobID) != 3 {
		t.Errorf("ada %d, bob %d records; want 0 and 3", f.records(adaID), f.records(bobID))
	}
	for _, h := range []string{"", "erase:", "erase:a/b", "x:" + adaID, "erase:" + strings.Repeat("a,", 300) + "a", "erase:0*:a", "erase:1*:a,b", "erase:x*:a", "erase:a,../b", "erase:a?b"} {
		if _, err := c.Poll(t.Context(), connectors.ActionErase, h, nil); !errors.Is(err, connectors.ErrPermanent) {
			t.Errorf("Poll(%q): %v; want a permanent error", h, err)
		}
	}
	if _, err := c.Poll(t.Context(), connectors.ActionOptOut, "erase:"+adaID, nil); !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("Poll(opt_out): %v; want a permanent error", err)
	}
}

// TestOptOut: the email suppressed and unsubscribed from each list named;
// the other person untouched.
func TestOptOut(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.seed()
	f.set(func(f *fake) { f.lists["Xy12ab"] = map[string]bool{adaEmail: true} })
	c := f.connector(t, Spec{Lists: []string{listID, "Xy12ab"}})
	res, err := c.OptOut(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "phone", Value: "+1 415 555 0101"}}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int64{CollSuppressions: 1, "list:" + listID: 1, "list:Xy12ab": 1}, counts(res)); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if !f.suppressed[adaEmail] || f.suppressed[bobEmail] || f.lists[listID][adaEmail] || f.lists["Xy12ab"][adaEmail] || !f.lists[listID][bobEmail] {
		t.Errorf("suppressed %v, lists %v", f.suppressed, f.lists)
	}
}

// TestErrors: a 429 is a RetryAfter of its Retry-After; no error quotes
// the subject or the body's detail.
func TestErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.seed()
	f.set(func(f *fake) { f.limited = true })
	c := f.connector(t, Spec{})
	_, err := c.Export(t.Context(), ada, &recorder{})
	if d, ok := connectors.RetryDelay(err); !ok || d != 7*time.Second {
		t.Errorf("429: %v (delay %v); want RetryAfter 7s", err, d)
	}
	if !strings.Contains(err.Error(), "throttled") || strings.Contains(err.Error(), "Expected available") || strings.Contains(err.Error(), adaEmail) {
		t.Errorf("429 error: %v", err)
	}

	// A links.next to another host is not followed with the key.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"data":[],"links":{"next":"https://evil.example/api/profiles?page%5Bcursor%5D=1"}}`))
	}))
	defer other.Close()
	c2 := f.connector(t, Spec{})
	c2.client.Base, c2.client.HTTP = other.URL, other.Client()
	if _, err := c2.Export(t.Context(), ada, &recorder{}); !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "links.next") {
		t.Errorf("foreign links.next: %v", err)
	}
}

// TestCheck: a valid key passes, a revoked one fails.
func TestCheck(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	if cs := f.connector(t, Spec{}).Check(t.Context()); len(cs) != 1 || cs[0].Err != nil {
		t.Errorf("check: %+v", cs)
	}
	if cs := f.connector(t, Spec{APIKey: "pk_bad"}).Check(t.Context()); len(cs) != 1 || cs[0].Err == nil {
		t.Errorf("check with a bad key: %+v", cs)
	}
}

// TestSettings: each bad setting is refused by name.
func TestSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{}, "api_key: required"},
		{Spec{APIKey: "pk a"}, "api_key: holds white space"},
		{Spec{APIKey: "pk", Revision: "2024/10/15"}, "revision:"},
		{Spec{APIKey: "pk", Lists: []string{"a b"}}, "lists:"},
		{Spec{APIKey: "pk", Lists: []string{"Y6nRLr", "Y6nRLr"}}, "given twice"},
		{Spec{APIKey: "pk", Actions: []string{"correct"}}, "actions:"},
		{Spec{APIKey: "pk", PollEvery: "10s"}, "poll_every:"},
	} {
		if _, err := New("k", tc.spec, nil, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v; want %q", tc.spec, err, tc.want)
		}
	}
	c, err := New("k", Spec{APIKey: "pk", Actions: []string{"export"}}, nil, nil)
	if err != nil || !c.Handles(connectors.ActionExport) || c.Handles(connectors.ActionErase) || c.client.Revision != DefaultRevision {
		t.Errorf("New: %v, %+v", err, c)
	}
}

// TestRealKlaviyo reads a profile from a real account: read-only (Check
// and an export of DSAR_TEST_KLAVIYO_EMAIL, or of nobody).
func TestRealKlaviyo(t *testing.T) {
	key := os.Getenv("DSAR_TEST_KLAVIYO_KEY")
	if key == "" {
		t.Skip("DSAR_TEST_KLAVIYO_KEY is not set: the real-account test (read-only: check and export) is skipped")
	}
	c, err := New("real", Spec{APIKey: key}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range c.Check(t.Context()) {
		if ch.Err != nil {
			t.Fatalf("%s: %v", ch.What, ch.Err)
		}
	}
	email := os.Getenv("DSAR_TEST_KLAVIYO_EMAIL")
	if email == "" {
		email = "dsar-nobody-" + time.Now().Format("20060102150405") + "@example.com"
	}
	res, err := c.Export(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: email}}}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("export: %d records in %d collections", res.Records, len(res.Collections))
}
