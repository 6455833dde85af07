package connectors_test

import (
	"errors"
	"testing"

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
