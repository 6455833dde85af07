package connectors_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// TestNoRedirects: a POST answered 302 comes back as the 302, the target is
// never called, and the client passed in (or http.DefaultClient) still
// follows redirects as before.
func TestNoRedirects(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		elsewhere.Add(1)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(other.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(redirector.Close)

	post := func(c *http.Client) int {
		t.Helper()
		resp, err := c.Post(redirector.URL+"/erase", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}

	base := &http.Client{Timeout: 7 * time.Second}
	for _, hc := range []*http.Client{base, nil} {
		if code := post(connectors.NoRedirects(hc)); code != http.StatusFound || elsewhere.Load() != 0 {
			t.Errorf("NoRedirects: %d, %d calls elsewhere; want the 302 itself and none", code, elsewhere.Load())
		}
	}
	if c := connectors.NoRedirects(base); c.Timeout != base.Timeout || c == base {
		t.Errorf("NoRedirects(hc) = %p timeout %v; want a copy keeping hc's settings", c, c.Timeout)
	}
	if base.CheckRedirect != nil || http.DefaultClient.CheckRedirect != nil {
		t.Error("NoRedirects changed the client it was given")
	}
	if code := post(base); code != http.StatusOK || elsewhere.Load() != 1 {
		t.Errorf("the original client: %d, %d calls elsewhere; want it to follow as before", code, elsewhere.Load())
	}
}
