package connectortest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
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
