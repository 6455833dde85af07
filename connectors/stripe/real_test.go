package stripe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/connectors"
)

// TestRealStripe exports and erases (by deletion) a customer of its own
// in a real account's test mode when DSAR_TEST_STRIPE_KEY is a test-mode
// secret key (sk_test_...). It creates dsar-test-<random>@example.com
// with the test card pm_card_visa attached, exports them, deletes them,
// and erases again (none found). A live key is refused: the test never
// touches live data.
func TestRealStripe(t *testing.T) {
	key := os.Getenv("DSAR_TEST_STRIPE_KEY")
	if key == "" {
		t.Skip("DSAR_TEST_STRIPE_KEY is not set: the test against a real Stripe account (test mode) is skipped")
	}
	if !strings.HasPrefix(key, "sk_test_") {
		t.Skip("DSAR_TEST_STRIPE_KEY is not a test-mode key (sk_test_...): the test never runs against live data, so it is skipped")
	}
	c, err := New("real", Spec{SecretKey: key}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range c.Check(t.Context()) {
		if ch.Err != nil {
			t.Fatalf("check %s: %v", ch.What, ch.Err)
		}
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	email := "dsar-test-" + hex.EncodeToString(b) + "@example.com"
	cl := c.Client()
	var cust object
	if err := cl.do(t.Context(), http.MethodPost, "/v1/customers", url.Values{"email": {email}, "name": {"dsar test"}}, "", &cust); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = cl.DeleteCustomer(context.Background(), cust.ID) })
	var pm object
	if err := cl.do(t.Context(), http.MethodPost, "/v1/payment_methods/pm_card_visa/attach", url.Values{"customer": {cust.ID}}, "", &pm); err != nil {
		t.Fatal(err)
	}
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: email}}}
	rec := recorder{}
	res, err := c.Export(t.Context(), s, rec)
	if err != nil || len(rec[Customers]) != 1 || len(rec[PaymentMethods]) != 1 {
		t.Fatalf("Export = %v, %v; want the customer and its card", res.Collections, err)
	}
	if strings.Contains(rec[PaymentMethods][0], "4242424242424242") || !strings.Contains(rec[PaymentMethods][0], `"last4":"4242"`) {
		t.Errorf("the card is not masked as Stripe masks it: %s", rec[PaymentMethods][0])
	}
	if res, err = c.Erase(t.Context(), s); err != nil || res.Records != 1 {
		t.Fatalf("Erase = %v, %v; want 1 customer deleted", res.Collections, err)
	}
	if res, err = c.Erase(t.Context(), s); err != nil || res.Records != 0 {
		t.Fatalf("second Erase = %v, %v; want none found", res.Collections, err)
	}
}
