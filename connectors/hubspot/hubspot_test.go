package hubspot

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
)

// The fixture's people: Ada, the subject, and Bob, who shares a company, a
// manual list and a dynamic list with her.
const (
	adaEmail, adaID = "ada@example.com", "70012345"
	bobEmail, bobID = "bob@example.com", "70098765"
)

// seed writes Ada and Bob into f.
func (f *fake) seed() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.contacts[adaID] = &fakeContact{id: adaID, email: adaEmail, created: "2024-03-01T10:00:00.000Z",
		props:  map[string]string{"email": adaEmail, "firstname": "Ada", "lastname": "Lovelace", "phone": "+44 20 7946 0001", "hs_object_id": adaID},
		assocs: map[string][]string{"companies": {"5551"}, "deals": {"9001", "9002", "9003"}}}
	f.contacts[bobID] = &fakeContact{id: bobID, email: bobEmail, created: "2024-03-02T10:00:00.000Z",
		props:  map[string]string{"email": bobEmail, "firstname": "Bob", "lastname": "Builder", "hs_object_id": bobID},
		assocs: map[string][]string{"companies": {"5551"}, "deals": {"9100"}, "notes": {"8200"}}}
	f.contacts[adaID].assocs["notes"] = []string{"8101", "8102", "8103"}
	f.contacts[adaID].assocs["emails"] = []string{"8111"}
	f.engagements["notes"] = map[string]map[string]string{
		"8101": {"hs_note_body": "Ada asked about the analytical engine", "hs_timestamp": "2024-05-01T09:00:00.000Z"},
		"8102": {"hs_note_body": "Ada called back", "hs_timestamp": "2024-05-02T09:00:00.000Z"},
		"8103": {"hs_note_body": "Ada renewed", "hs_timestamp": "2024-05-03T09:00:00.000Z"},
		"8200": {"hs_note_body": "Builder wants a quote", "hs_timestamp": "2024-05-04T09:00:00.000Z"},
	}
	f.engagements["emails"] = map[string]map[string]string{
		"8111": {"hs_email_subject": "Your order", "hs_email_text": "Dear Ada", "hs_email_to_email": adaEmail, "hs_email_direction": "EMAIL"},
	}
	at := "2024-04-01T00:00:00.000Z"
	f.lists["101"] = &fakeList{processing: "MANUAL", members: map[string]string{adaID: at, bobID: at}}  // newsletter
	f.lists["102"] = &fakeList{processing: "SNAPSHOT", members: map[string]string{adaID: at}}           // webinar
	f.lists["201"] = &fakeList{processing: "DYNAMIC", members: map[string]string{adaID: at, bobID: at}} // customers
	basis := "CONSENT_WITH_NOTICE"
	f.statuses[adaEmail] = []status{
		{SubscriberIDString: adaEmail, Channel: "EMAIL", SubscriptionID: 33583163, Status: "SUBSCRIBED", Source: "Self Service Resubscription", LegalBasis: &basis, Timestamp: "2023-02-09T20:13:19.046Z"},
		{SubscriberIDString: adaEmail, Channel: "EMAIL", SubscriptionID: 39644612, Status: "NOT_SPECIFIED", Source: "Not specified", Timestamp: "2024-06-05T13:39:29.495Z"},
	}
	f.statuses[bobEmail] = []status{
		{SubscriberIDString: bobEmail, Channel: "EMAIL", SubscriptionID: 33583163, Status: "SUBSCRIBED", Source: "Self Service Resubscription", LegalBasis: &basis, Timestamp: "2023-02-09T20:13:19.046Z"},
	}
}

// subjectRecords counts what still holds Ada's data: her contact, her list
// memberships and her subscription statuses.
func (f *fake) subjectRecords() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.statuses[adaEmail])
	if f.contacts[adaID] != nil {
		n++
	}
	for _, l := range f.lists {
		if _, ok := l.members[adaID]; ok {
			n++
		}
	}
	return n
}

// otherRecords counts Bob's records exactly as seeded.
func (f *fake) otherRecords() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	if c := f.contacts[bobID]; c != nil && c.props["firstname"] == "Bob" && len(c.assocs["deals"]) == 1 {
		n++
	}
	for _, id := range []string{"101", "201"} {
		if _, ok := f.lists[id].members[bobID]; ok {
			n++
		}
	}
	if st := f.statuses[bobEmail]; len(st) == 1 && st[0].Status == "SUBSCRIBED" && !f.optedOut[bobEmail] {
		n++
	}
	return n
}

// connector returns a connector of the fake at srv, opting out of all email
// and of lists 101 and 102.
func testConnector(t testing.TB, srv *httptest.Server, token string) *Connector {
	t.Helper()
	c, err := New("crm", Spec{Token: token, BaseURL: srv.URL, OptOut: &OptOutSpec{Lists: []string{"101", "102"}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConformance(t *testing.T) {
	t.Parallel()
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T) (connectors.Connector, *connectortest.Fixture) {
			f, srv := newFake(t)
			return testConnector(t, srv, fakeToken), &connectortest.Fixture{
				Subject:        connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}}},
				OtherValues:    []string{bobEmail, bobID, "Builder", "9100"},
				Seed:           func(context.Context) { f.seed() },
				SubjectRecords: func(context.Context) int { return f.subjectRecords() },
				OtherRecords:   func(context.Context) int { return f.otherRecords() },
				InSegment: func(context.Context) bool {
					f.mu.Lock()
					defer f.mu.Unlock()
					_, in101 := f.lists["101"].members[adaID]
					_, in102 := f.lists["102"].members[adaID]
					return in101 || in102
				},
				OptedOut: func(context.Context) bool {
					f.mu.Lock()
					defer f.mu.Unlock()
					return f.optedOut[adaEmail]
				},
				Export: map[string]int64{collContacts: 1, collLists: 3, collSubscriptions: 1, "engagements/notes": 3, "engagements/emails": 1},
				Erase:  map[string]int64{collContacts: 1},
				OptOut: map[string]int64{collSubscriptions: 1, collLists: 2},
			}
		},
		Fault: func(t *testing.T, fault connectortest.Fault) connectors.Connector {
			f, srv := newFake(t)
			f.seed()
			token := fakeToken
			switch fault {
			case connectortest.Unreachable:
				srv.Close() // nothing listens there any more
			case connectortest.Rejected:
				token = "pat-eu1-revoked"
			case connectortest.RateLimited:
				f.dailyLeft = 0
			}
			return testConnector(t, srv, token)
		},
	})
}

// recorder keeps exported records.
type recorder struct {
	mu   sync.Mutex
	recs map[string][]any
}

func (r *recorder) WriteRecord(_ context.Context, coll string, doc any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recs == nil {
		r.recs = map[string][]any{}
	}
	r.recs[coll] = append(r.recs[coll], doc)
	return nil
}

// TestExportContact: the contact's properties as asked, and every page of
// its associations, read with the after cursors.
func TestExportContact(t *testing.T) {
	t.Parallel()
	f, srv := newFake(t)
	f.seed()
	c := testConnector(t, srv, fakeToken)
	out := &recorder{}
	// The email as the request wrote it, in another case: HubSpot matches it.
	if _, err := c.Export(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "Ada@Example.com"}}}, out); err != nil {
		t.Fatal(err)
	}
	if len(out.recs[collContacts]) != 1 {
		t.Fatalf("contacts: %v", out.recs)
	}
	doc := out.recs[collContacts][0].(map[string]any)
	want := map[string][]string{"companies": {"5551"}, "deals": {"9001", "9002", "9003"}, "tickets": nil}
	got := doc["associations"].(map[string][]string)
	for typ, ids := range want {
		if len(ids) > 0 && !reflect.DeepEqual(got[typ], ids) {
			t.Errorf("associations %s = %v; want %v", typ, got[typ], ids)
		}
	}
	props := doc["properties"].(map[string]*string)
	if p := props["lastname"]; p == nil || *p != "Lovelace" {
		t.Errorf("lastname = %v", p)
	}
	if _, ok := props["phone"]; !ok {
		t.Error("the default properties were not asked for")
	}
}

// TestNoEmail: a subject without email is not searched, and nothing is
// sent.
func TestNoEmail(t *testing.T) {
	t.Parallel()
	f, srv := newFake(t)
	c := testConnector(t, srv, fakeToken)
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "customer_id", Value: "cus_1"}}}
	for _, a := range connectors.Actions() {
		if !connectors.Supports(c, a) {
			continue
		}
		res, err := connectors.Run(t.Context(), c, a, s, &recorder{})
		if err != nil || len(res.Collections) == 0 || res.Collections[0].Outcome != connectors.OutcomeNotSearched {
			t.Errorf("%s: %+v, %v; want not_searched", a, res, err)
		}
	}
	if len(f.sent) != 0 {
		t.Errorf("%d requests sent", len(f.sent))
	}
}

// TestRateLimitAnswers: HubSpot's 429s are RetryAfter errors, of the
// 10-second interval or of an hour for the daily limit, and quote no email.
func TestRateLimitAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(*fake)
		want  time.Duration
	}{
		{"ten secondly", func(f *fake) { f.per10s = 1; f.sent = []time.Time{time.Now()} }, 10 * time.Second},
		{"daily", func(f *fake) { f.dailyLeft = 0 }, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, srv := newFake(t)
			f.seed()
			tc.setup(f)
			c := testConnector(t, srv, fakeToken)
			_, err := c.Export(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}}}, &recorder{})
			d, ok := connectors.RetryDelay(err)
			if !ok || d != tc.want || errors.Is(err, connectors.ErrPermanent) {
				t.Fatalf("err = %v (delay %v); want RetryAfter %v", err, d, tc.want)
			}
			if strings.Contains(err.Error(), adaEmail) || !strings.Contains(err.Error(), "RATE_LIMIT") {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// fakeClock is a clock that sleeping advances.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (k *fakeClock) now() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.t
}

func (k *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.t = k.t.Add(d)
	return ctx.Err()
}

// TestLimiter: however many calls the actions make, no more than
// limits.per_10s requests reach HubSpot in any 10 seconds, so HubSpot never
// answers 429; the connector waits instead.
func TestLimiter(t *testing.T) {
	t.Parallel()
	const per10s = 5
	clk := &fakeClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	f, srv := newFake(t)
	f.seed()
	f.now = clk.now // HubSpot allows 100 per 10s: only the connector's limit holds it back
	c, err := New("crm", Spec{Token: fakeToken, BaseURL: srv.URL, Limits: LimitsSpec{Per10s: per10s}})
	if err != nil {
		t.Fatal(err)
	}
	c.now, c.sleep, c.limiter = clk.now, clk.sleep, newLocalLimiter(clk.now)
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}}}
	for range 6 { // 8 requests each: read, a second association page of deals and of notes, search, lists, statuses, batch reads of notes and emails
		if _, err := c.Export(t.Context(), s, &recorder{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.sent) != 48 {
		t.Fatalf("%d requests; want 48", len(f.sent))
	}
	for i, at := range f.sent {
		n := 0
		for _, b := range f.sent[:i+1] {
			if b.After(at.Add(-10 * time.Second)) {
				n++
			}
		}
		if n > per10s {
			t.Fatalf("%d requests in the 10 seconds up to request %d; want at most %d", n, i, per10s)
		}
	}
	if took := f.sent[len(f.sent)-1].Sub(f.sent[0]); took < 90*time.Second {
		t.Errorf("48 requests at 5 per 10s took %v; want at least 90s", took)
	}
}

// TestLimiterDeadline: a wait that would outlast the caller's deadline, and
// the daily limit spent, are RetryAfter errors and send nothing.
func TestLimiterDeadline(t *testing.T) {
	t.Parallel()
	f, srv := newFake(t)
	f.seed()
	c, err := New("crm", Spec{Token: fakeToken, BaseURL: srv.URL, Limits: LimitsSpec{Per10s: 1, Daily: 2}})
	if err != nil {
		t.Fatal(err)
	}
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}}}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err = c.Erase(ctx, s) // a read, then the deletion 10s later: beyond the deadline
	if d, ok := connectors.RetryDelay(err); !ok || d < 8*time.Second {
		t.Fatalf("err = %v; want RetryAfter about 10s", err)
	}
	if len(f.sent) != 1 || f.contacts[adaID] == nil {
		t.Fatalf("%d requests sent; want only the read", len(f.sent))
	}
	// The daily limit: a clock past the 10 seconds, one request left.
	clk := &fakeClock{t: time.Now().Add(time.Minute)}
	c.now, c.sleep = clk.now, clk.sleep
	c.limiter.(*localLimiter).now = clk.now
	_, err = c.Erase(t.Context(), s)
	if d, ok := connectors.RetryDelay(err); !ok || d < 23*time.Hour || !strings.Contains(err.Error(), "a day") {
		t.Fatalf("err = %v; want RetryAfter until the day's window ends", err)
	}
	if len(f.sent) != 2 {
		t.Errorf("%d requests sent; want 2", len(f.sent))
	}
}

// TestSettings: bad settings are refused with the setting named.
func TestSettings(t *testing.T) {
	t.Parallel()
	off := false
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{}, "token: required"},
		{Spec{Token: "a b"}, "token: holds white space"},
		{Spec{Token: "x", BaseURL: "http://api.hubapi.com"}, "base_url: must be https"},
		{Spec{Token: "x", BaseURL: "ftp://x"}, "base_url: want an https:// URL"},
		{Spec{Token: "x", Properties: []string{"First Name"}}, "properties: \"First Name\""},
		{Spec{Token: "x", Associations: []string{"deals/1"}}, "associations: \"deals/1\""},
		{Spec{Token: "x", OptOut: &OptOutSpec{Lists: []string{"newsletter"}}}, "opt_out.lists: \"newsletter\""},
		{Spec{Token: "x", OptOut: &OptOutSpec{UnsubscribeAll: &off}}, "opt_out: does nothing"},
		{Spec{Token: "x", Limits: LimitsSpec{Per10s: 1000}}, "limits.per_10s: want 1 to 250"},
		{Spec{Token: "x", Limits: LimitsSpec{Daily: -1}}, "limits.daily: want 1 to"},
	} {
		_, err := New("crm", tc.spec)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v; want %q...", tc.spec, err, tc.want)
		}
	}
	c, err := New("crm", Spec{Token: "x"})
	if err != nil || c.Handles(connectors.ActionOptOut) || !c.Handles(connectors.ActionErase) {
		t.Errorf("without opt_out: %v, handles opt_out %v", err, c.Handles(connectors.ActionOptOut))
	}
}

// TestFactory: the connectors file's settings, the token from the
// environment, and a typo reported at its line.
func TestFactory(t *testing.T) {
	t.Parallel()
	env := func(k string) (string, bool) { return "pat-na1-test", k == "HUBSPOT_TOKEN" }
	types := connectors.Types{Type: Factory(connectors.Deps{})}
	file := "connectors:\n  - name: crm\n    type: hubspot\n    token: ${HUBSPOT_TOKEN}\n    opt_out: {lists: [\"101\"]}\n"
	if _, err := connectors.Parse(t.Context(), []byte(file), types, env); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{"connectors:\n  - name: crm\n    type: hubspot\n    token: pat-na1-literal\n", "token must come from the environment"},
		{"connectors:\n  - name: crm\n    type: hubspot\n    token: ${HUBSPOT_TOKEN}\n    propertys: [email]\n", "line 5"},
		{"connectors:\n  - name: crm\n    type: hubspot\n    token: ${HUBSPOT_TOKEN}\n    limits: {per_10s: 900}\n", "line 5"},
	} {
		_, err := connectors.Parse(t.Context(), []byte(tc.file), types, env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.file, err, tc.want)
		}
	}
}

// TestRealHubSpot reads a contact from a real HubSpot account, read only:
// DSAR_TEST_HUBSPOT_TOKEN is a private app's token (crm.objects.contacts.read,
// crm.lists.read, communication_preferences.read), DSAR_TEST_HUBSPOT_EMAIL
// an email to look up (default: one no account holds).
func TestRealHubSpot(t *testing.T) {
	token := os.Getenv("DSAR_TEST_HUBSPOT_TOKEN")
	if token == "" {
		t.Skip("DSAR_TEST_HUBSPOT_TOKEN is not set: the test against a real HubSpot account is skipped")
	}
	email := os.Getenv("DSAR_TEST_HUBSPOT_EMAIL")
	if email == "" {
		email = "dsar-test-nobody@example.invalid"
	}
	c, err := New("real", Spec{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	c.client = &http.Client{Timeout: 30 * time.Second}
	out := &recorder{}
	res, err := c.Export(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: email}}}, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("export: %d records (%d contacts)", res.Records, len(out.recs[collContacts]))
	for _, ch := range c.Check(t.Context()) {
		if ch.What == "reachable" || ch.What == "token accepted" {
			if !ch.Passed() {
				t.Errorf("check %s: %v", ch.What, ch.Err)
			}
			continue
		}
		t.Logf("check %s: passed %v (%v)", ch.What, ch.Passed(), ch.Err)
	}
}

// TestAwkwardEmail: an email with characters a path escapes (/, +, %)
// reaches its contact, in every call.
func TestAwkwardEmail(t *testing.T) {
	t.Parallel()
	f, srv := newFake(t)
	const e = "a/b+c%41@example.com"
	f.contacts["42"] = &fakeContact{id: "42", email: e, props: map[string]string{"email": e}}
	f.lists["101"] = &fakeList{processing: "MANUAL", members: map[string]string{"42": "2024-04-01T00:00:00.000Z"}}
	c := testConnector(t, srv, fakeToken)
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: e}}}
	if res, err := c.Export(t.Context(), s, &recorder{}); err != nil || res.Records != 2 {
		t.Fatalf("Export: %+v, %v; want the contact and its list", res, err)
	}
	if res, err := c.OptOut(t.Context(), s); err != nil || res.Records != 2 || !f.optedOut[e] {
		t.Fatalf("OptOut: %+v, %v", res, err)
	}
	if res, err := c.Erase(t.Context(), s); err != nil || res.Records != 1 || len(f.contacts) != 0 || !f.blocked[e] {
		t.Fatalf("Erase: %+v, %v", res, err)
	}
}

// TestBusinessUnit: opt_out.business_unit_id is sent as businessUnitId.
func TestBusinessUnit(t *testing.T) {
	t.Parallel()
	f, srv := newFake(t)
	f.seed()
	unit := int64(7)
	c, err := New("crm", Spec{Token: fakeToken, BaseURL: srv.URL, OptOut: &OptOutSpec{BusinessUnitID: &unit}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.OptOut(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}}}); err != nil {
		t.Fatal(err)
	}
	if len(f.unsubs) != 1 || f.unsubs[0] != "businessUnitId=7&channel=EMAIL" {
		t.Errorf("unsubscribe-all queries: %q", f.unsubs)
	}
}

// TestRateLimitHeaders: when HubSpot's headers say the 10-second limit is
// spent, the connector waits out the interval instead of meeting a 429,
// whatever its own limit; when they say the daily one is, the next call is
// a RetryAfter and sends nothing.
func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	f, srv := newFake(t)
	f.seed()
	f.now, f.per10s = clk.now, 3
	c := testConnector(t, srv, fakeToken) // 100 per 10s
	c.now, c.sleep, c.limiter = clk.now, clk.sleep, newLocalLimiter(clk.now)
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}}}
	for range 3 {
		if _, err := c.Export(t.Context(), s, &recorder{}); err != nil {
			t.Fatal(err)
		}
	}
	if f.limited != 0 || len(f.sent) != 24 {
		t.Errorf("%d requests, %d answered 429; want 24 and none", len(f.sent), f.limited)
	}

	f.dailyLeft = 8 // an export's requests: the last answer says none is left
	if _, err := c.Export(t.Context(), s, &recorder{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Export(t.Context(), s, &recorder{})
	if d, ok := connectors.RetryDelay(err); !ok || d != time.Hour {
		t.Errorf("after Daily-Remaining 0: %v; want RetryAfter 1h", err)
	}
	if f.limited != 0 {
		t.Errorf("%d requests answered 429; want none", f.limited)
	}
}

// TestCheck: `dsar connectors test` reports the token, each scope the
// configured actions need, and each opt-out list.
func TestCheck(t *testing.T) {
	t.Parallel()
	report := func(checks []connectors.Check) map[string]string {
		out := map[string]string{}
		for _, c := range checks {
			switch {
			case c.Unknown():
				out[c.What] = "unknown"
			case c.Passed():
				out[c.What] = "ok"
			default:
				out[c.What] = c.Err.Error()
			}
		}
		return out
	}
	f, srv := newFake(t)
	f.seed()
	f.scopes = slices.DeleteFunc(f.scopes, func(s string) bool { return s == "crm.lists.write" })
	c, err := New("crm", Spec{Token: fakeToken, BaseURL: srv.URL, OptOut: &OptOutSpec{Lists: []string{"101", "201", "999"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := report(c.Check(t.Context()))
	for what, want := range map[string]string{
		"reachable":      "ok",
		"token accepted": "ok",
		"scope crm.objects.contacts.read (reading contacts)":                                                      "ok",
		"scope crm.objects.contacts.write (erasure)":                                                              "ok",
		"scope communication_preferences.write or communication_preferences.read_write (opting out of all email)": "ok",
		"scope tickets (reading associated tickets)":                                                              "ok",
		"scope sales-email-read (reading the content of logged emails)":                                           "ok",
		"scope crm.objects.contacts.read (reading associated emails, notes, calls, meetings, tasks)":              "ok",
		"scope crm.lists.write (removing from lists)":                                                             "the private app lacks it",
		"list 101 (opt_out.lists) exists and is manual or snapshot":                                               "ok",
		"list 201 (opt_out.lists) exists and is manual or snapshot":                                               "list 201 is dynamic",
		"list 999 (opt_out.lists) exists and is manual or snapshot":                                               "HubSpot has no list 999",
	} {
		if !strings.HasPrefix(got[what], want) {
			t.Errorf("%s: %q; want %q", what, got[what], want)
		}
	}

	rejected := testConnector(t, srv, "pat-eu1-revoked")
	if got := report(rejected.Check(t.Context())); got["reachable"] != "ok" || !strings.Contains(got["token accepted"], "401") || len(got) != 2 {
		t.Errorf("a refused token: %v", got)
	}
	srv.Close()
	if got := report(c.Check(t.Context())); got["reachable"] == "ok" || len(got) != 1 {
		t.Errorf("HubSpot unreachable: %v", got)
	}
}

// TestAssociationCursorLoop: an after cursor that HubSpot gives again ends
// the export with a permanent error instead of reading the same page
// forever.
func TestAssociationCursorLoop(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := map[string]any{"results": []map[string]string{{"id": "9001", "type": "contact_to_deal"}},
			"paging": map[string]any{"next": map[string]string{"after": "same"}}}
		switch {
		case strings.HasPrefix(r.URL.Path, "/crm/v3/objects/contacts/1/associations/"):
			if calls.Add(1) > 5 {
				http.Error(w, "looping", http.StatusTeapot)
				return
			}
			reply(w, page)
		case strings.HasPrefix(r.URL.Path, "/crm/v3/objects/contacts/"):
			reply(w, map[string]any{"id": "1", "properties": map[string]string{"email": "ada@example.com"},
				"associations": map[string]any{"deals": page}})
		default:
			reply(w, map[string]any{"results": []any{}})
		}
	}))
	t.Cleanup(srv.Close)
	c := testConnector(t, srv, fakeToken)
	_, err := c.Export(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ada@example.com"}}}, &recorder{})
	if err == nil || !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("err = %v; want a permanent error about a repeated cursor", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d association pages read; want 1", n)
	}
}

// TestMembershipPages: the lists a contact is in are read to the last page
// (the endpoint pages with after cursors, as the lists v3 reference shows),
// so an opt-out leaves a list named on the second page too.
func TestMembershipPages(t *testing.T) {
	t.Parallel()
	var removed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/crm/v3/lists/records/0-1/1/memberships" && r.URL.Query().Get("after") == "":
			reply(w, map[string]any{"results": []map[string]any{{"listId": "7", "listVersion": 1}}, "total": 2,
				"paging": map[string]any{"next": map[string]string{"after": "p2"}}})
		case r.URL.Path == "/crm/v3/lists/records/0-1/1/memberships" && r.URL.Query().Get("after") == "p2":
			reply(w, map[string]any{"results": []map[string]any{{"listId": "102", "listVersion": 1}}, "total": 2})
		case r.URL.Path == "/crm/v3/lists/102/memberships/remove":
			removed.Add(1)
			reply(w, map[string]any{"recordIdsRemoved": []string{"1"}, "recordIdsMissing": []string{}})
		case strings.HasPrefix(r.URL.Path, "/crm/v3/objects/contacts/"):
			reply(w, map[string]any{"id": "1", "properties": map[string]string{"email": "ada@example.com"}})
		default:
			http.Error(w, "unexpected", http.StatusTeapot)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := New("crm", Spec{Token: fakeToken, BaseURL: srv.URL, OptOut: &OptOutSpec{Lists: []string{"102"}, UnsubscribeAll: new(bool)}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.OptOut(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ada@example.com"}}})
	if err != nil || res.Records != 1 || removed.Load() != 1 {
		t.Fatalf("OptOut = %+v, %v (%d removals); want the contact removed from list 102, on the second page", res, err, removed.Load())
	}
}
