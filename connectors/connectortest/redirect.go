package connectortest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dsar-project/dsar/connectors"
)

// Intercept starts a server in front of a type's fake vendor server at
// upstream (its scheme and host count, not its path), stopped when t
// ends, and returns its URL, to stand in the connector's base URL: it
// passes every request through to the fake, except those pick picks,
// which answer answers instead (a status the vendor does not document, a
// proxy's HTML page, a redirect). answer nil: those are passed through too.
func Intercept(t testing.TB, upstream string, pick func(*http.Request) bool, answer http.Handler) string {
	t.Helper()
	up, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: up.Scheme, Host: up.Host})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if answer != nil && pick(r) {
			answer.ServeHTTP(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// Redirector stands in front of a type's fake vendor server to show that a
// connector follows no redirect (see connectors.NoRedirects): it passes
// every request through to the fake, except those its write func picks,
// which it answers 302 Found to another server. That server answers any
// request 200 with the body given, as the vendor words success, so a
// connector that followed the 302 would count the write done.
type Redirector struct {
	// URL is the front server's: the connector's base URL.
	URL      string
	followed atomic.Int32
}

// Redirect starts a Redirector in front of the server at upstream (a base
// URL), stopped when t ends.
func Redirect(t testing.TB, upstream string, write func(*http.Request) bool, body string) *Redirector {
	t.Helper()
	r := &Redirector{}
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.followed.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(elsewhere.Close)
	r.URL = Intercept(t, upstream, write, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, elsewhere.URL+req.URL.RequestURI(), http.StatusFound)
	}))
	return r
}

// Followed is how many requests reached the server redirected to: a
// connector that follows no redirect makes none.
func (r *Redirector) Followed() int { return int(r.followed.Load()) }

// CheckRefused fails t unless err, what an action whose write was answered
// 302 returned, is a permanent error that quotes none of secrets (the
// subject's identifiers), and the 302 was not followed.
func (r *Redirector) CheckRefused(t testing.TB, err error, secrets ...string) {
	t.Helper()
	if !errors.Is(err, connectors.ErrPermanent) || r.Followed() != 0 {
		t.Errorf("a write answered 302: error %v, followed %d times; want a permanent error, not followed", err, r.Followed())
	}
	for _, s := range secrets {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("the error quotes %q: %v", s, err)
		}
	}
}
