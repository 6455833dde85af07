package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
)

// Ada is the subject; Bob the other person. Ada has three charges, so
// that with two objects a page the lists take two pages.
var (
	ada     = person{id: "cus_ada1", email: "ada@example.com", name: "Ada Lovelace", charges: 3}
	bob     = person{id: "cus_bob2", email: "bob@example.com", name: "Bob Bobson", charges: 2}
	subject = connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: ada.email}}}
)

func seed(f *fake) {
	f.set(func(f *fake) { f.pageMax = 2 })
	f.add(ada)
	f.add(bob)
}

// TestConformance runs the conformance suite against the fake account,
// erasing by deletion and by redaction job.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, erase := range []string{EraseDelete, EraseRedact} {
		t.Run(erase, func(t *testing.T) {
			t.Parallel()
			connectortest.Run(t, connectortest.Harness{
				New: func(t *testing.T) (connectors.Connector, *connectortest.Fixture) {
					f := newFake(t)
					return f.connector(t, Spec{Erase: erase, PollEvery: "1m"}), &connectortest.Fixture{
						Subject:        subject,
						OtherValues:    []string{bob.email, bob.id, bob.name},
						Seed:           func(context.Context) { seed(f) },
						SubjectRecords: func(context.Context) int { return f.holds(ada.email) },
						OtherRecords:   func(context.Context) int { return f.holds(bob.email) },
						Export:         map[string]int64{Customers: 1, Charges: 3, Invoices: 1, PaymentMethods: 1},
						Erase:          map[string]int64{Customers: 1},
					}
				},
				Fault: func(t *testing.T, fault connectortest.Fault) connectors.Connector {
					f := newFake(t)
					switch fault {
					case connectortest.Unreachable:
						srv := httptest.NewServer(http.NotFoundHandler())
						srv.Close()
						c := f.connector(t, Spec{Erase: erase})
						c.base = srv.URL
						return c
					case connectortest.Rejected:
						return f.connector(t, Spec{Erase: erase, SecretKey: "sk_test_revoked"})
					case connectortest.RateLimited:
						f.set(func(f *fake) { f.limited = true })
						return f.connector(t, Spec{Erase: erase})
					}
					return nil
				},
			})
		})
	}
}

// run does action a as the worker does: the action, then polls until it
// is no longer Pending.
func run(t *testing.T, c *Connector, a connectors.Action, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, []string, error) {
	t.Helper()
	res, err := connectors.Run(t.Context(), c, a, s, out)
	var statuses []string
	for polls := 0; err == nil && res.Pending != nil; polls++ {
		if polls == 10 {
			t.Fatalf("%s still pending after %d polls", a, polls)
		}
		statuses = append(statuses, res.Pending.Handle)
		res, err = connectors.Poll(t.Context(), c, a, res.Pending.Handle, out)
	}
	return res, statuses, err
}

type recorder map[string][]string

func (r recorder) WriteRecord(_ context.Context, col string, doc any) error {
	b, err := json.Marshal(doc)
	r[col] = append(r[col], string(b))
	return err
}

// TestExport: every page of every list is read (two objects a page), the
// Stripe-Version is pinned, and no card number is exported.
func TestExport(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	seed(f)
	c := f.connector(t, Spec{StripeVersion: "2024-06-20"})
	rec := recorder{}
	res, _, err := run(t, c, connectors.ActionExport, subject, rec)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 6 || len(rec[Charges]) != 3 {
		t.Errorf("exported %d records, %d charges; want 6, 3", res.Records, len(rec[Charges]))
	}
	for col, docs := range rec {
		for _, d := range docs {
			if strings.Contains(d, bob.email) || strings.Contains(d, "4242424242424242") {
				t.Errorf("%s record discloses too much: %s", col, d)
			}
		}
	}
	if !strings.Contains(rec[PaymentMethods][0], `"last4":"4242"`) {
		t.Errorf("payment method not as Stripe returns it: %s", rec[PaymentMethods][0])
	}
	f.set(func(f *fake) {
		if len(f.versions) != 1 || !f.versions["2024-06-20"] {
			t.Errorf("Stripe-Version headers %v; want only 2024-06-20", f.versions)
		}
	})
}

// TestEraseDelete: the customer is deleted; erasing again finds none.
func TestEraseDelete(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	seed(f)
	c := f.connector(t, Spec{})
	for i, want := range []int64{1, 0} {
		res, handles, err := run(t, c, connectors.ActionErase, subject, nil)
		if err != nil || res.Records != want || len(handles) != 0 {
			t.Fatalf("erase %d: %v, %d records, polled %v; want %d at once", i+1, err, res.Records, handles, want)
		}
	}
	if n := f.holds(bob.email); n != 2 {
		t.Errorf("Bob's records %d; want 2", n)
	}
}

// TestEraseRedact: the job is filed once (a retried erasure reuses it by
// its Idempotency-Key), run when ready and polled to succeeded; a job that
// fails validation fails the erasure for good.
func TestEraseRedact(t *testing.T) {
	t.Parallel()
	t.Run("succeeded", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		seed(f)
		c := f.connector(t, Spec{Erase: EraseRedact})
		first, err := c.Erase(t.Context(), subject)
		if err != nil || first.Pending == nil {
			t.Fatalf("erase: %v, %+v; want pending", err, first)
		}
		again, err := c.Erase(t.Context(), subject)
		if err != nil || again.Pending == nil || again.Pending.Handle != first.Pending.Handle {
			t.Fatalf("retried erase: %v, %+v; want the same job %s", err, again.Pending, first.Pending.Handle)
		}
		if first.Pending.PollAfter != time.Hour {
			t.Errorf("PollAfter %v; want the default 1h", first.Pending.PollAfter)
		}
		res, handles, err := run(t, c, connectors.ActionErase, subject, nil)
		if err != nil || res.Records != 1 || res.Collections[0].Outcome != "redacted" {
			t.Fatalf("erase: %v, %+v", err, res)
		}
		if len(handles) < 3 || handles[0] != first.Pending.Handle {
			t.Errorf("polled %v; want job %s through its states", handles, first.Pending.Handle)
		}
		if n := f.holds(ada.email); n != 0 {
			t.Errorf("Ada's records after redaction: %d", n)
		}
		if res, _, err := run(t, c, connectors.ActionErase, subject, nil); err != nil || res.Records != 0 {
			t.Errorf("erasing again: %v, %d records; want none found", err, res.Records)
		}
	})
	t.Run("failed", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		seed(f)
		f.set(func(f *fake) { f.failValidation = true })
		c := f.connector(t, Spec{Erase: EraseRedact})
		_, _, err := run(t, c, connectors.ActionErase, subject, nil)
		if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "failed validation") || strings.Contains(err.Error(), ada.email) {
			t.Fatalf("err = %v; want a permanent failed-validation error naming no one", err)
		}
		if n := f.holds(ada.email); n == 0 {
			t.Error("a failed job redacted Ada")
		}
	})
}

// TestRateLimited: a 429 is tried again with back-off, then answered
// RetryAfter; a limit that lifts meanwhile is not seen.
func TestRateLimited(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	seed(f)
	f.set(func(f *fake) { f.limited = true })
	c := f.connector(t, Spec{})
	_, err := c.Erase(t.Context(), subject)
	if d, ok := connectors.RetryDelay(err); !ok || d != rateRequeue || errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("err = %v; want RetryAfter %v", err, rateRequeue)
	}
	if strings.Contains(err.Error(), ada.email) {
		t.Errorf("error quotes the subject: %v", err)
	}
	f.set(func(f *fake) {
		if f.calls != 1+rateRetries {
			t.Errorf("%d calls; want %d", f.calls, 1+rateRetries)
		}
		f.limited = false
	})
}

// TestSettings: bad settings give a precise error naming the setting.
func TestSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{}, "secret_key: required"},
		{Spec{SecretKey: "sk_test x"}, "secret_key: holds white space"},
		{Spec{SecretKey: "sk_test_x", Erase: "shred"}, `erase: want delete or redact, not "shred"`},
		{Spec{SecretKey: "sk_test_x", Actions: []string{"opt_out"}}, "no opt-out"},
		{Spec{SecretKey: "sk_test_x", StripeVersion: "latest"}, "stripe_version"},
		{Spec{SecretKey: "sk_test_x", PollEvery: "1s"}, "poll_every"},
	} {
		_, err := New("p", tc.spec, nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v; want %q", tc.spec, err, tc.want)
		}
	}
}
