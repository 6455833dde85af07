package mailchimp_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
	"github.com/dsar-project/dsar/connectors/mailchimp"
)

// TestWriteStatus: each write counts done only on the status Mailchimp
// documents for it (204 for delete-permanent and for the tags, 200 with
// the member for the unsubscribe): an HTML page, another 2xx or an error
// status is an error naming the status, permanent unless 429 (RetryAfter)
// or 5xx (transient). The documented answer, from the fake, is done.
func TestWriteStatus(t *testing.T) {
	t.Parallel()
	subject := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: ada}}}
	for _, w := range []struct {
		name       string
		pick       func(*http.Request) bool
		documented int
		action     func(context.Context, *mailchimp.Connector) error
		done       func(*fake) bool
	}{
		{"delete-permanent", func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/actions/delete-permanent") }, http.StatusNoContent,
			func(ctx context.Context, c *mailchimp.Connector) error { _, err := c.Erase(ctx, subject); return err },
			func(f *fake) bool { return f.get(list1, ada) == nil && f.get(list2, ada) == nil }},
		{"unsubscribe", func(r *http.Request) bool { return r.Method == http.MethodPatch }, http.StatusOK,
			func(ctx context.Context, c *mailchimp.Connector) error { _, err := c.OptOut(ctx, subject); return err },
			func(f *fake) bool { m := f.get(list1, ada); return m != nil && m.Status == "unsubscribed" }},
		{"tags", func(r *http.Request) bool {
			return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/tags")
		}, http.StatusNoContent,
			func(ctx context.Context, c *mailchimp.Connector) error { _, err := c.OptOut(ctx, subject); return err },
			func(f *fake) bool { m := f.get(list1, ada); return m != nil && len(m.Tags) == 0 }},
	} {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			// The zero Answer passes the write through to the fake.
			for _, a := range append([]connectortest.Answer{{}}, connectortest.AnswersBut(w.documented)...) {
				f, base := newFake(t, testKey, list1, list2)
				for _, s := range seed {
					f.add(s.list, s.m)
				}
				var h http.Handler
				if a.Status != 0 {
					h = a
				}
				c := newConnector(t, connectortest.Intercept(t, base, w.pick, h)+"/3.0", testKey)
				err := w.action(t.Context(), c)
				if a.Status == 0 {
					if err != nil || !w.done(f) {
						t.Errorf("the documented %d: %v, done %v; want done", w.documented, err, w.done(f))
					}
					continue
				}
				a.Check(t, err, w.documented)
				if err != nil && strings.Contains(err.Error(), hashOf(ada)) {
					t.Errorf("%s: the error quotes the member's hash: %v", a.Name, err)
				}
			}
		})
	}
}
