package mailchimp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mailchimp"
)

// TestRealMailchimp runs every action against a real account when
// DSAR_TEST_MAILCHIMP_KEY (an API key, …-us21) and DSAR_TEST_MAILCHIMP_LIST
// (an audience id) are set. It adds a member of its own
// (dsar-test-<random>@ DSAR_TEST_MAILCHIMP_DOMAIN, default example.com) with
// the tag dsar-test, exports, opts out and erases them: the address is then
// permanently deleted, and Mailchimp will not let it be imported again.
func TestRealMailchimp(t *testing.T) {
	key, list := os.Getenv("DSAR_TEST_MAILCHIMP_KEY"), os.Getenv("DSAR_TEST_MAILCHIMP_LIST")
	if key == "" || list == "" {
		t.Skip("DSAR_TEST_MAILCHIMP_KEY and DSAR_TEST_MAILCHIMP_LIST are not both set: the test against a real Mailchimp account is skipped")
	}
	domain := os.Getenv("DSAR_TEST_MAILCHIMP_DOMAIN")
	if domain == "" {
		domain = "example.com"
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	email := "dsar-test-" + hex.EncodeToString(b) + "@" + domain
	c, err := mailchimp.New("real", mailchimp.Spec{APIKey: key, Lists: []string{list}, SegmentTags: []string{"dsar-test"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range c.Check(t.Context()) {
		if !ch.Passed() {
			t.Fatalf("check %s: %v", ch.What, ch.Err)
		}
	}
	base := mailchimp.BaseURL(c) + "/lists/" + list + "/members/" + mailchimp.SubscriberHash(email)
	send := func(method, url string, body any) {
		t.Helper()
		data, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(data))
		req.SetBasicAuth("dsar", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("seeding: %s answered %d", method, resp.StatusCode)
		}
	}
	send(http.MethodPut, base, map[string]string{"email_address": email, "status_if_new": "subscribed"})
	t.Cleanup(func() { _, _ = c.Erase(context.Background(), subjectOf(email)) }) // t.Context() is done by then
	send(http.MethodPost, base+"/tags", map[string]any{"tags": []map[string]string{{"name": "dsar-test", "status": "active"}}})

	s := subjectOf(email)
	w := &collect{}
	res, err := c.Export(t.Context(), s, w)
	if err != nil || counts(res)[list+"/members"] != 1 || counts(res)[list+"/tags"] != 1 {
		t.Fatalf("Export = %v, %v; want the member and its tag", res.Collections, err)
	}
	if res, err = c.OptOut(t.Context(), s); err != nil || res.Records != 2 {
		t.Fatalf("OptOut = %v, %v; want the member unsubscribed and the tag removed", res.Collections, err)
	}
	if res, err = c.OptOut(t.Context(), s); err != nil || res.Records != 0 {
		t.Fatalf("second OptOut = %v, %v; want 0 records", res.Collections, err)
	}
	if res, err = c.Erase(t.Context(), s); err != nil || res.Records != 1 {
		t.Fatalf("Erase = %v, %v; want 1 record", res.Collections, err)
	}
	if res, err = c.Erase(t.Context(), s); err != nil || res.Records != 0 {
		t.Fatalf("second Erase = %v, %v; want 0 records", res.Collections, err)
	}
	w = &collect{}
	if res, err = c.Export(t.Context(), s, w); err != nil || res.Records != 0 || strings.Contains(strings.Join(w.docs, ""), email) {
		t.Fatalf("Export after Erase = %v, %v; want nothing", res.Collections, err)
	}
}

func subjectOf(email string) connectors.Subject {
	return connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: email}}}
}

func counts(r connectors.Result) map[string]int64 {
	out := map[string]int64{}
	for _, c := range r.Collections {
		out[c.Name] += c.Records
	}
	return out
}

type collect struct{ docs []string }

func (w *collect) WriteRecord(_ context.Context, _ string, doc any) error {
	b, err := json.Marshal(doc)
	w.docs = append(w.docs, string(b))
	return err
}
