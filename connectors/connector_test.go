package connectors_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
)

func TestSubjectValues(t *testing.T) {
	t.Parallel()
	s := connectors.Subject{Identities: []connectors.Identity{
		{Kind: "email", Value: "ada@example.com"},
		{Kind: "phone", Value: "+1 555 0100"},
		{Kind: "email", Value: "ada.l@example.com", Source: "shop/customers"},
	}}
	if diff := cmp.Diff([]string{"ada@example.com", "ada.l@example.com"}, s.Values("email")); diff != "" {
		t.Errorf("Values(email) (-want +got):\n%s", diff)
	}
	if got := s.Values("customer_id"); got != nil {
		t.Errorf("Values(customer_id) = %v; want nil", got)
	}
}

func TestResultAdd(t *testing.T) {
	t.Parallel()
	var r connectors.Result
	r.Add("customers", "masked", 1)
	r.Add("orders", "deleted", 0)
	r.Add("segments", "pulled", 2)
	want := connectors.Result{Records: 3, Collections: []connectors.CollectionResult{
		{Name: "customers", Outcome: "masked", Records: 1},
		{Name: "orders", Outcome: "deleted", Records: 0},
		{Name: "segments", Outcome: "pulled", Records: 2},
	}}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	if err := connectors.Permanent(nil); err != nil {
		t.Errorf("Permanent(nil) = %v; want nil", err)
	}
	cause := errors.New("authentication failed")
	err := connectors.Permanent(cause)
	if !errors.Is(err, connectors.ErrPermanent) || !errors.Is(err, cause) {
		t.Errorf("Permanent(%v) = %v; want it to wrap ErrPermanent and the cause", cause, err)
	}
	if errors.Is(cause, connectors.ErrPermanent) {
		t.Error("the cause itself became permanent")
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	cause := errors.New("429 Too Many Requests")
	err := fmt.Errorf("export contacts: %w", connectors.RetryAfter(90*time.Second, cause))
	if d, ok := connectors.RetryDelay(err); !ok || d != 90*time.Second {
		t.Errorf("RetryDelay = %v, %v; want 90s", d, ok)
	}
	if !errors.Is(err, cause) || errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("%v: want it to wrap the cause and not be permanent", err)
	}
	if got, want := err.Error(), "export contacts: 429 Too Many Requests (retry after 1m30s)"; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	if d, _ := connectors.RetryDelay(connectors.RetryAfter(0, nil)); d != connectors.MinRetryAfter {
		t.Errorf("RetryAfter(0) asks for %v; want the minimum %v", d, connectors.MinRetryAfter)
	}
	if _, ok := connectors.RetryDelay(cause); ok {
		t.Error("RetryDelay of a plain error reports a delay")
	}
}
