package stripe

import (
	"net/http"
	"testing"

	"github.com/dsar-project/dsar/connectors/connectortest"
)

// TestRedirectNotFollowed: a 302 on the erasure's write (the customer's
// DELETE, or the redaction job's POST) is a permanent error, not followed:
// a followed one would send it as a GET elsewhere, whose 200 would count
// the customer deleted or the job filed.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ erase, success string }{
		{EraseDelete, `{"id":"cus_ada1","object":"customer","deleted":true}`},
		{EraseRedact, `{"id":"prj_elsewhere1","object":"privacy.redaction_job","status":"validating","objects":{"customers":["cus_ada1"]}}`},
	} {
		t.Run(tc.erase, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			seed(f)
			rd := connectortest.Redirect(t, f.srv.URL, func(r *http.Request) bool {
				return r.Method != http.MethodGet
			}, tc.success)
			c := f.connector(t, Spec{Erase: tc.erase})
			c.base = rd.URL
			_, err := c.Erase(t.Context(), subject)
			rd.CheckRefused(t, err, ada.email)
			if n := f.holds(ada.email); n == 0 {
				t.Error("Ada's records went")
			}
		})
	}
}
