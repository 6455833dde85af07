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
	try := func(act func(*mailchimp.Connector, context.Context, connectors.Subject) (connectors.Result, error), done func(*fake) bool) func(*testing.T, func(string) string) (bool, error) {
		return func(t *testing.T, front func(string) string) (bool, error) {
			f, base := newFake(t, testKey, list1, list2)
			for _, s := range seed {
				f.add(s.list, s.m)
			}
			c := newConnector(t, front(base)+"/3.0", testKey)
			_, err := act(c, t.Context(), subject)
			return done(f), err
		}
	}
	connectortest.Writes(t, []connectortest.Write{
		{Name: "delete-permanent", Documented: http.StatusNoContent,
			Pick: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/actions/delete-permanent") },
			Try:  try((*mailchimp.Connector).Erase, func(f *fake) bool { return f.get(list1, ada) == nil && f.get(list2, ada) == nil })},
		{Name: "unsubscribe", Documented: http.StatusOK,
			Pick: func(r *http.Request) bool { return r.Method == http.MethodPatch },
			Try:  try((*mailchimp.Connector).OptOut, func(f *fake) bool { m := f.get(list1, ada); return m != nil && m.Status == "unsubscribed" })},
		{Name: "tags", Documented: http.StatusNoContent,
			Pick: func(r *http.Request) bool {
				return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/tags")
			},
			Try: try((*mailchimp.Connector).OptOut, func(f *fake) bool { m := f.get(list1, ada); return m != nil && len(m.Tags) == 0 })},
	}, hashOf(ada))
}
