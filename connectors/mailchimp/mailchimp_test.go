package mailchimp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
	"github.com/dsar-project/dsar/connectors/mailchimp"
)

const (
	testKey = "0123456789abcdef0123456789abcdef-us21"
	list1   = "a1b2c3d4e5"
	list2   = "f6e5d4c3b2"
	ada     = "ada@example.com"
	bob     = "bob@example.com"
)

// seed is what the conformance fixture writes: Ada and Bob share the vip
// tag (a segment) in list1 and are both in list2.
var seed = []struct {
	list string
	m    fakeMember
}{
	{list1, fakeMember{Email: ada, Status: "subscribed", Tags: []string{"vip", "spring-sale"}, Activity: []string{"open", "click", "sent"}}},
	{list1, fakeMember{Email: bob, Status: "subscribed", Tags: []string{"vip"}, Activity: []string{"open"}}},
	{list2, fakeMember{Email: ada, Status: "pending"}},
	{list2, fakeMember{Email: bob, Status: "subscribed", Tags: []string{"vip"}}},
}

// records counts the records of email still held: its members, tags and
// activities; with exact, only members still exactly as seeded.
func records(f *fake, email string, exact bool) int {
	n := 0
	for _, s := range seed {
		if s.m.Email != email {
			continue
		}
		m := f.get(s.list, email)
		if m == nil || (exact && !reflect.DeepEqual(*m, s.m)) {
			continue
		}
		n += 1 + len(m.Tags) + len(m.Activity)
	}
	return n
}

// TestConformance runs the connector conformance suite against the fake
// Mailchimp, whose pages hold 2 items (so tags and activity are paged).
func TestConformance(t *testing.T) {
	t.Parallel()
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T) (connectors.Connector, *connectortest.Fixture) {
			f, base := newFake(t, testKey, list1, list2)
			f.maxCount = 2
			c := newConnector(t, base, testKey)
			return c, &connectortest.Fixture{
				Subject: connectors.Subject{Identities: []connectors.Identity{
					{Kind: "email", Value: ada}, {Kind: "customer_id", Value: "cus_ada_1"},
				}},
				OtherValues: []string{bob, hashOf(bob), "spring-sale-bob"},
				Seed: func(context.Context) {
					for _, s := range seed {
						f.add(s.list, s.m)
					}
				},
				SubjectRecords: func(context.Context) int { return records(f, ada, false) },
				OtherRecords:   func(context.Context) int { return records(f, bob, true) },
				InSegment: func(context.Context) bool {
					for _, l := range []string{list1, list2} {
						if m := f.get(l, ada); m != nil && (m.Status == "subscribed" || m.Status == "pending" || len(m.Tags) > 0) {
							return true
						}
					}
					return false
				},
				OptedOut: func(context.Context) bool {
					m := f.get(list1, ada)
					return m != nil && m.Status == "unsubscribed"
				},
				Export: map[string]int64{list1 + "/members": 1, list1 + "/tags": 2, list1 + "/activity": 3, list2 + "/members": 1},
				Erase:  map[string]int64{list1 + "/members": 1, list2 + "/members": 1},
				OptOut: map[string]int64{list1 + "/members": 1, list1 + "/tags": 2, list2 + "/members": 1},
			}
		},
		Fault: func(t *testing.T, fault connectortest.Fault) connectors.Connector {
			switch fault {
			case connectortest.Unreachable:
				srv := httptest.NewServer(nil)
				base := srv.URL + "/3.0"
				srv.Close() // nothing listens there any more
				return newConnector(t, base, testKey)
			case connectortest.Rejected:
				_, base := newFake(t, testKey, list1, list2)
				return newConnector(t, base, "ffffffffffffffffffffffffffffffff-us21")
			case connectortest.RateLimited:
				f, base := newFake(t, testKey, list1, list2)
				f.throttled = true
				return newConnector(t, base, testKey)
			}
			return nil
		},
	})
}

func newConnector(t testing.TB, base, key string) *mailchimp.Connector {
	t.Helper()
	c, err := mailchimp.New("newsletter", mailchimp.Spec{APIKey: key, Lists: []string{list1, list2}, BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSubscriberHash: the MD5 of the lower-case address, as Mailchimp's
// docs give it for their example address.
func TestSubscriberHash(t *testing.T) {
	t.Parallel()
	for _, email := range []string{"urist.mcvankab@freddiesjokes.com", "Urist.McVankab@FreddiesJokes.com", " URIST.MCVANKAB@FREDDIESJOKES.COM "} {
		if got, want := mailchimp.SubscriberHash(email), "62eeb292278cc15f5817cb78f7790b08"; got != want {
			t.Errorf("SubscriberHash(%q) = %s; want %s", email, got, want)
		}
	}
}

// TestConcurrencyCap: however many actions run at once, through one
// connector or two sharing the key, the fake never sees more than 10
// calls in flight, and every action succeeds (no 429 for too many
// connections).
func TestConcurrencyCap(t *testing.T) {
	t.Parallel()
	f, base := newFake(t, testKey, list1, list2)
	f.limit = 1000 // count, never refuse: the cap is the connector's
	f.delay = 10 * time.Millisecond
	for _, s := range seed {
		f.add(s.list, s.m)
	}
	cs := []*mailchimp.Connector{newConnector(t, base, testKey), newConnector(t, base, testKey)}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: ada}}}
			_, err := cs[i%2].Export(t.Context(), s, discard{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxInFlight > mailchimp.MaxConcurrent || f.maxInFlight < 2 {
		t.Errorf("at most %d calls in flight at once; want 2 to %d", f.maxInFlight, mailchimp.MaxConcurrent)
	}
}

type discard struct{}

func (discard) WriteRecord(context.Context, string, any) error { return nil }

// TestErrors: a 404 member is nothing held; errors never quote the email
// nor its hash; a 429 asks for the fake's Retry-After; an unknown audience
// fails Check and the segment listing.
func TestErrors(t *testing.T) {
	t.Parallel()
	f, base := newFake(t, testKey, list1, list2)
	c := newConnector(t, base, testKey)
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: ada}}}
	res, err := c.Erase(t.Context(), s)
	if err != nil || res.Records != 0 {
		t.Fatalf("Erase of a member never held = %d records, %v; want 0, nil", res.Records, err)
	}
	f.mu.Lock()
	f.throttled = true
	f.mu.Unlock()
	_, err = c.OptOut(t.Context(), s)
	if d, ok := connectors.RetryDelay(err); !ok || d != 7*time.Second {
		t.Errorf("OptOut when throttled: %v; want RetryAfter 7s", err)
	}
	if strings.Contains(err.Error(), ada) || strings.Contains(err.Error(), hashOf(ada)) {
		t.Errorf("the error quotes the member: %v", err)
	}
	f.mu.Lock()
	f.throttled = false
	f.mu.Unlock()

	bad, err := mailchimp.New("newsletter", mailchimp.Spec{APIKey: testKey, Lists: []string{list1, "nosuchlist"}, BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	checks := bad.Check(t.Context())
	if len(checks) != 3 || !checks[0].Passed() || !checks[1].Passed() || checks[2].Passed() {
		t.Errorf("Check with an unknown audience = %v; want ping and %s passed, nosuchlist failed", checks, list1)
	}
	if !errors.Is(checks[2].Err, connectors.ErrPermanent) {
		t.Errorf("Check of an unknown audience: %v; want a permanent error", checks[2].Err)
	}
	err = bad.EachSegmentMember(t.Context(), func(string, connectors.Subject) error { return nil })
	if !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("EachSegmentMember with an unknown audience: %v; want a permanent error, not an empty audience", err)
	}
}

// TestBearer: the key sent as a bearer token reaches the same account.
func TestBearer(t *testing.T) {
	t.Parallel()
	f, base := newFake(t, testKey, list1)
	f.add(list1, fakeMember{Email: ada, Status: "subscribed"})
	c, err := mailchimp.New("newsletter", mailchimp.Spec{APIKey: testKey, Auth: "bearer", Lists: []string{list1}, BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Erase(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ADA@example.com"}}})
	if err != nil || res.Records != 1 {
		t.Fatalf("Erase with bearer auth = %d records, %v; want 1, nil", res.Records, err)
	}
}

// TestSegmentMembers: the members still subscribed or pending, per
// audience, paged; and opting one out drops them from the listing.
func TestSegmentMembers(t *testing.T) {
	t.Parallel()
	f, base := newFake(t, testKey, list1, list2)
	f.maxCount = 1
	for _, s := range seed {
		f.add(s.list, s.m)
	}
	f.add(list1, fakeMember{Email: "gone@example.com", Status: "unsubscribed"})
	c := newConnector(t, base, testKey)
	list := func() []string {
		var got []string
		err := c.EachSegmentMember(t.Context(), func(seg string, m connectors.Subject) error {
			got = append(got, seg+" "+m.Values("email")[0])
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	want := []string{list1 + " " + ada, list1 + " " + bob, list2 + " " + ada, list2 + " " + bob}
	if got := list(); !reflect.DeepEqual(got, want) {
		t.Errorf("EachSegmentMember = %q; want %q", got, want)
	}
	if _, err := c.OptOut(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: ada}}}); err != nil {
		t.Fatal(err)
	}
	if got, want := list(), []string{list1 + " " + bob, list2 + " " + bob}; !reflect.DeepEqual(got, want) {
		t.Errorf("after OptOut, EachSegmentMember = %q; want %q", got, want)
	}
}

// TestRedirectNotFollowed: a 3xx is an error, never followed: a followed
// 302 would send the deletion's POST as a GET to another host, whose 200
// would count the member deleted.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","email_address":"x","status":"subscribed"}`))
	}))
	t.Cleanup(other.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	c := newConnector(t, redirector.URL, testKey)
	res, err := c.Erase(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: ada}}})
	if err == nil || !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("Erase redirected elsewhere = %d records, %v; want a permanent error", res.Records, err)
	}
	if strings.Contains(err.Error(), hashOf(ada)) {
		t.Errorf("the error quotes the member's hash: %v", err)
	}
}
