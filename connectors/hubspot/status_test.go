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
	try := func(act func(*Connector, context.Context, connectors.Subject) (connectors.Result, error), done func(*fake) bool) func(*testing.T, func(string) string) (bool, error) {
		return func(t *testing.T, front func(string) string) (bool, error) {
			f, srv := newFake(t)
			f.seed()
			c := testConnector(t, srv, fakeToken)
			c.base = front(srv.URL)
			_, err := act(c, t.Context(), subject)
			f.mu.Lock()
			defer f.mu.Unlock()
			return done(f), err
		}
	}
	connectortest.Writes(t, []connectortest.Write{
		{Name: "gdpr-delete", Documented: http.StatusNoContent,
			Pick: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/gdpr-delete") },
			Try:  try((*Connector).Erase, func(f *fake) bool { return f.contacts[adaID] == nil })},
		{Name: "unsubscribe-all", Documented: http.StatusOK,
			Pick: func(r *http.Request) bool {
				return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/unsubscribe-all")
			},
			Try: try((*Connector).OptOut, func(f *fake) bool { return f.optedOut[adaEmail] })},
		{Name: "list remove", Documented: http.StatusOK,
			Pick: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/memberships/remove") },
			Try:  try((*Connector).OptOut, func(f *fake) bool { _, in := f.lists["101"].members[adaID]; return !in })},
	}, adaEmail)
}
