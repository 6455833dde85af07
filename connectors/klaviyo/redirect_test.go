package klaviyo

import (
	"net/http"
	"testing"

	"github.com/dsar-project/dsar/connectors/connectortest"
)

// TestRedirectNotFollowed: a 302 on the deletion job is a permanent error,
// not followed: a followed one would send the POST as a GET elsewhere,
// whose 2xx would count the deletion filed.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.seed()
	rd := connectortest.Redirect(t, f.srv.URL, func(r *http.Request) bool {
		return r.Method != http.MethodGet
	}, `{}`)
	c := f.connector(t, Spec{})
	c.client.Base = rd.URL
	_, err := c.Erase(t.Context(), ada)
	rd.CheckRefused(t, err, adaEmail, adaPhone)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deletions != 0 {
		t.Errorf("%d deletion jobs filed; want none", f.deletions)
	}
}
