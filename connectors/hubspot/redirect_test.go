package hubspot

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
)

// TestRedirectNotFollowed: a 302 on gdpr-delete is a permanent error, not
// followed, whether the connector uses its own client or the service's
// (Deps.HTTP, which follows redirects by itself): a followed one would
// send the POST as a GET elsewhere, whose 200 would count Ada deleted.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		deps *connectors.Deps
	}{{"New's client", nil}, {"Deps.HTTP", &connectors.Deps{HTTP: &http.Client{}}}} {
		deps := tc.deps
		f, srv := newFake(t)
		f.seed()
		rd := connectortest.Redirect(t, srv.URL, func(r *http.Request) bool {
			return strings.HasSuffix(r.URL.Path, "/gdpr-delete")
		}, `{}`)
		var c *Connector
		if deps == nil {
			c = testConnector(t, srv, fakeToken)
			c.base = rd.URL
		} else {
			env := func(k string) (string, bool) { return fakeToken, k == "HUBSPOT_TOKEN" }
			file := "connectors:\n  - name: crm\n    type: hubspot\n    token: ${HUBSPOT_TOKEN}\n    base_url: " + rd.URL + "\n"
			reg, err := connectors.Parse(t.Context(), []byte(file), connectors.Types{Type: Factory(*deps)}, env)
			if err != nil {
				t.Fatal(err)
			}
			x, _ := reg.Lookup("crm")
			c = x.(*Connector)
		}
		_, err := c.Erase(t.Context(), connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}}})
		rd.CheckRefused(t, err, adaEmail)
		if f.subjectRecords() == 0 {
			t.Errorf("%s: Ada's contact went", tc.name)
		}
	}
}
