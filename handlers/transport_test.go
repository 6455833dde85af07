package handlers_test

import (
	"crypto/tls"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/handlers/apitest"
	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/tlsutil"
)

// serveTLS serves h over TLS with a certificate made for the test and
// returns its URL and a client that trusts the test's authority alone.
func serveTLS(t *testing.T, h http.Handler) (string, *http.Client) {
	t.Helper()
	certs := testenv.NewTLS(t)
	reloader, err := tlsutil.NewCertReloader(certs.CertFile, certs.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	// http.Server as `dsar serve` runs it (httptest's StartTLS would put
	// its own certificate first).
	ln, err := tls.Listen("tcp", "127.0.0.1:0", reloader.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: certs.Pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}}
	t.Cleanup(client.CloseIdleConnections)
	return "https://" + ln.Addr().String(), client
}

// TestHSTSOnlyUnderTLS: Strict-Transport-Security is on every answer over
// the API's own TLS (its certificate checked by the client), and on every
// answer when a TLS proxy is declared; never on plain HTTP otherwise, nor
// when its max-age is 0.
func TestHSTSOnlyUnderTLS(t *testing.T) {
	t.Parallel()
	var deps handlers.Deps
	a := setupWith(t, false, func(d *handlers.Deps) { d.HSTSMaxAge = 365 * 24 * time.Hour; deps = *d })
	tlsURL, tlsClient := serveTLS(t, handlers.New(deps))
	proxied := deps
	proxied.BehindTLSProxy = true
	behindProxy := httptest.NewServer(handlers.New(proxied))
	t.Cleanup(behindProxy.Close)
	off := deps
	off.HSTSMaxAge = 0
	offURL, offClient := serveTLS(t, handlers.New(off))

	const want = "max-age=31536000"
	tests := []struct {
		name   string
		base   string
		client *http.Client
		want   string
	}{
		{"own TLS", tlsURL, tlsClient, want},
		{"plain HTTP", a.url, http.DefaultClient, ""},
		{"plain HTTP behind a declared TLS proxy", behindProxy.URL, http.DefaultClient, want},
		{"own TLS, max-age 0", offURL, offClient, ""},
	}
	for _, tt := range tests {
		for _, path := range []string{"/healthz", "/v1/requests", "/v1/portal/requests/nope", "/no-such-route"} {
			resp, err := tt.client.Get(tt.base + path)
			if err != nil {
				t.Fatalf("%s: GET %s: %v", tt.name, path, err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Strict-Transport-Security"); got != tt.want {
				t.Errorf("%s: GET %s: %d: Strict-Transport-Security %q, want %q", tt.name, path, resp.StatusCode, got, tt.want)
			}
			if tt.client != http.DefaultClient && (resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12) {
				t.Errorf("%s: GET %s did not travel over TLS 1.2+", tt.name, path)
			}
		}
	}
	// A client that does not trust the test's authority is refused.
	if _, err := http.Get(tlsURL + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the authority: err %v, want a certificate error", err)
	}
}

// TestCORSOnlyForPortalOrigins: a page of a configured origin may call the
// portal API (preflight answered, answers readable); another origin, or
// the agent API, gets no CORS permission; with no origin configured, none
// has any.
func TestCORSOnlyForPortalOrigins(t *testing.T) {
	t.Parallel()
	const portal, evil = "https://privacy.shop.example", "https://evil.example"
	a := setupWith(t, false, func(d *handlers.Deps) { d.CORSOrigins = []string{portal, "http://localhost:3000"} })
	none := setup(t, false)

	preflight := func(base, path, origin, method string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, base+path, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	tests := []struct {
		name, base, path, origin, method string
		allowed                          bool
	}{
		{"filing from the portal's origin", a.url, "/v1/portal/requests", portal, "POST", true},
		{"status from the portal's origin", a.url, "/v1/portal/requests/req_x", portal, "GET", true},
		{"preferences from a local portal", a.url, "/v1/portal/requests/req_x/preferences", "http://localhost:3000", "PUT", true},
		{"filing from another origin", a.url, "/v1/portal/requests", evil, "POST", false},
		{"an origin that only starts like the portal's", a.url, "/v1/portal/requests", portal + ".evil.example", "POST", false},
		{"a method the portal has not", a.url, "/v1/portal/requests/req_x", portal, "DELETE", false},
		{"the agent API from the portal's origin", a.url, "/v1/requests", portal, "POST", false},
		{"the suppression API from the portal's origin", a.url, "/v1/suppressions/check", portal, "GET", false},
		{"no origin configured", none.url, "/v1/portal/requests", portal, "POST", false},
	}
	for _, tt := range tests {
		resp := preflight(tt.base, tt.path, tt.origin, tt.method)
		acao := resp.Header.Get("Access-Control-Allow-Origin")
		if tt.allowed {
			if resp.StatusCode != http.StatusNoContent || acao != tt.origin ||
				!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), tt.method) ||
				resp.Header.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type, X-Request-Id" ||
				resp.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("%s: %d, headers %v; want 204 allowing %s", tt.name, resp.StatusCode, resp.Header, tt.origin)
			}
		} else if resp.StatusCode < 400 || acao != "" {
			t.Errorf("%s: %d, Access-Control-Allow-Origin %q; want a refusal without CORS headers", tt.name, resp.StatusCode, acao)
		}
		if strings.HasPrefix(tt.path, "/v1/portal/") && !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
			t.Errorf("%s: no Vary: Origin", tt.name)
		}
	}

	// The actual filing: readable by the portal's page, with its status
	// token and request id; not by another origin's.
	file := func(origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, a.url+"/v1/portal/requests",
			strings.NewReader(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := file(portal)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Access-Control-Allow-Origin") != portal ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("filing from the portal's origin: %d, headers %v", resp.StatusCode, resp.Header)
	}
	if resp := file(evil); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("filing from another origin: Access-Control-Allow-Origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

// TestEveryRouteIsNosniffAndV1NoStore walks every route of the router
// (API, pages, probes), with an admin key and without, and checks every
// answer is nosniff, and every answer under /v1, which may carry a person's
// data, a status token or an export, is no-store. A route added later is
// walked too.
func TestEveryRouteIsNosniffAndV1NoStore(t *testing.T) {
	t.Parallel()
	a := setupPages(t)
	id := a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	// The routes, as TestPageSecurityHeaders lists them.
	h := handlers.New(handlers.Deps{Log: slog.New(slog.DiscardHandler), Keys: apikey.NewKeyring(),
		Pages: webkit.New(webkit.Options{Secrets: [][]byte{make([]byte, 32)}}), ConsoleAuth: stubAuth{}})
	param := regexp.MustCompile(`[:*][a-z_]+`)
	walked, v1 := 0, 0
	for _, r := range apitest.Routes(t, h) {
		path := param.ReplaceAllStringFunc(r.Path, func(p string) string {
			if p == ":id" && r.Method == http.MethodGet {
				return id // a real request: a full answer where the key may read it
			}
			return "nope" // nothing is changed by the walk
		})
		for _, key := range []string{adminKey, ""} {
			req, _ := http.NewRequest(r.Method, a.url+path, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			walked++
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("%s %s (key %v): %d: X-Content-Type-Options %q", r.Method, path, key != "", resp.StatusCode, got)
			}
			if strings.HasPrefix(r.Path, "/v1/") {
				v1++
				if got := resp.Header.Get("Cache-Control"); got != "no-store" {
					t.Errorf("%s %s (key %v): %d: Cache-Control %q, want no-store", r.Method, path, key != "", resp.StatusCode, got)
				}
			}
		}
	}
	if v1 < 80 || walked < 100 {
		t.Fatalf("walked %d answers, %d under /v1: the walk proves nothing", walked, v1)
	}
}
