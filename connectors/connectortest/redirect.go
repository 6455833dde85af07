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
	up, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	r := &Redirector{}
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.followed.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(elsewhere.Close)
	proxy := httputil.NewSingleHostReverseProxy(up)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if write(req) {
			http.Redirect(w, req, elsewhere.URL+req.URL.RequestURI(), http.StatusFound)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(front.Close)
	r.URL = front.URL
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
