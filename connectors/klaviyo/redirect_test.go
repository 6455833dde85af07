package klaviyo

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/connectors"
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
	res, err := c.Erase(t.Context(), ada)
	if !errors.Is(err, connectors.ErrPermanent) || rd.Followed() != 0 {
		t.Errorf("Erase answered 302: %+v, %v, followed %d; want a permanent error, not followed", res, err, rd.Followed())
	}
	if err != nil && strings.Contains(err.Error(), adaEmail) {
		t.Errorf("the error quotes the subject: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deletions != 0 {
		t.Errorf("%d deletion jobs filed; want none", f.deletions)
	}
}
