package hubspot

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
)

// TestWriteStatus: each write counts done only on the status HubSpot
// documents for it (204 for gdpr-delete, 200 with JSON for the
// unsubscribe from all email and for the removal from a list): an HTML
// page, another 2xx or an error status is an error naming the status,
// permanent unless 429 (RetryAfter) or 5xx (transient). The documented
// answer, from the fake, is done.
func TestWriteStatus(t *testing.T) {
	t.Parallel()
	subject := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}}}
	erase := func(ctx context.Context, c *Connector) error { _, err := c.Erase(ctx, subject); return err }
	optOut := func(ctx context.Context, c *Connector) error { _, err := c.OptOut(ctx, subject); return err }
	for _, w := range []struct {
		name       string
		pick       func(*http.Request) bool
		documented int
		action     func(context.Context, *Connector) error
		done       func(*fake) bool
	}{
		{"gdpr-delete", func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/gdpr-delete") }, http.StatusNoContent,
			erase, func(f *fake) bool { return f.contacts[adaID] == nil }},
		{"unsubscribe-all", func(r *http.Request) bool {
			return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/unsubscribe-all")
		}, http.StatusOK, optOut, func(f *fake) bool { return f.optedOut[adaEmail] }},
		{"list remove", func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/memberships/remove") }, http.StatusOK,
			optOut, func(f *fake) bool { _, in := f.lists["101"].members[adaID]; return !in }},
	} {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			// The zero Answer passes the write through to the fake.
			for _, a := range append([]connectortest.Answer{{}}, connectortest.AnswersBut(w.documented)...) {
				f, srv := newFake(t)
				f.seed()
				var h http.Handler
				if a.Status != 0 {
					h = a
				}
				c := testConnector(t, srv, fakeToken)
				c.base = connectortest.Intercept(t, srv.URL, w.pick, h)
				err := w.action(t.Context(), c)
				f.mu.Lock()
				done := w.done(f)
				f.mu.Unlock()
				if a.Status == 0 {
					if err != nil || !done {
						t.Errorf("the documented %d: %v, done %v; want done", w.documented, err, done)
					}
					continue
				}
				a.Check(t, err, w.documented)
				if err != nil && strings.Contains(err.Error(), adaEmail) {
					t.Errorf("%s: the error quotes the subject: %v", a.Name, err)
				}
			}
		})
	}
}
