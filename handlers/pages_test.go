package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/handlers/apitest"
	"github.com/dsar-project/dsar/handlers/consolepage/consoleauth"
	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/testenv"
)

// pageAllowed names, for each console page route, the roles that may use
// it. A console route missing here fails the test, so a new page must say
// who may use it. The portal's pages and the sign-in are public.
var pageAllowed = map[string][]apikey.Role{
	"GET /console":                       {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor},
	"GET /console/requests/:id":          {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor},
	"GET /console/requests/:id/report":   {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor},
	"POST /console/requests/:id/:action": {apikey.RoleAdmin, apikey.RoleAgent},
	"GET /console/requests/:id/:action":  {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor},
	"GET /console/dashboard":             {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor},
	"GET /console/queues":                {apikey.RoleAdmin},
	"GET /console/sign-in":               nil, // public
	"POST /console/sign-in":              nil,
	"POST /console/sign-out":             nil,
}

// setupPages serves the API with the pages: the portal, and the console
// with its real sign-in (sessions in the test's Redis).
func setupPages(t *testing.T) *api {
	t.Helper()
	return setupWith(t, false, func(d *handlers.Deps) {
		kit := webkit.New(webkit.Options{Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, Log: d.Log})
		r := testenv.RedisServer(t)
		rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
		t.Cleanup(func() { _ = rdb.Close() })
		auth, err := consoleauth.New(context.Background(), consoleauth.Options{Kit: kit, Keys: d.Keys, Redis: rdb,
			Prefix: "dsar:console:" + testenv.Queue(t, r) + ":", IdleTimeout: 30 * 60e9, MaxAge: 12 * 3600e9, Log: d.Log})
		if err != nil {
			t.Fatal(err)
		}
		d.Pages, d.ConsoleAuth = kit, auth
	})
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t *testing.T
	c *http.Client
	a *api
}

func (a *api) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, a: a, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get returns the status, Location and body of GET path.
func (b *browser) get(path string) (int, string, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.a.url + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

// post posts form with the CSRF token of page (a GET first).
func (b *browser) post(page, path string, form url.Values) (int, string) {
	b.t.Helper()
	_, _, body := b.get(page)
	if m := csrfField.FindStringSubmatch(body); m != nil {
		form.Set("csrf", m[1])
	}
	resp, err := b.c.PostForm(b.a.url+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// signIn signs in with key and reports the sign-in's status.
func (b *browser) signIn(key string) int {
	b.t.Helper()
	status, _ := b.post("/console/sign-in", "/console/sign-in", url.Values{"key": {key}})
	return status
}

// TestPageRolesOnEveryRoute walks every console page with every role's
// session, and with none: who is let through, and who is refused (403, or
// sent to sign in).
func TestPageRolesOnEveryRoute(t *testing.T) {
	t.Parallel()
	a := setupPages(t)
	id := a.filed(`{"type":"deletion","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	keys := map[apikey.Role]string{apikey.RoleAdmin: adminKey, apikey.RoleAgent: agentKey, apikey.RoleAuditor: auditorKey, apikey.RolePipeline: pipelineKey}
	sessions := map[apikey.Role]*browser{}
	for role, key := range keys {
		b := a.browser(t)
		status := b.signIn(key)
		switch {
		case role == apikey.RolePipeline && status != http.StatusForbidden:
			t.Fatalf("pipeline key signed in: %d", status)
		case role != apikey.RolePipeline && status != http.StatusSeeOther:
			t.Fatalf("%s: sign-in %d", role, status)
		}
		sessions[role] = b
	}
	h := handlers.New(handlers.Deps{Log: slog.New(slog.DiscardHandler), Keys: apikey.NewKeyring(),
		Pages: webkit.New(webkit.Options{Secrets: [][]byte{make([]byte, 32)}}), ConsoleAuth: stubAuth{}})
	walked := 0
	for _, r := range apitest.Routes(t, h) {
		if !strings.HasPrefix(r.Path, "/console") {
			continue
		}
		route := r.Method + " " + r.Path
		roles, ok := pageAllowed[route]
		if !ok {
			t.Errorf("%s: not in pageAllowed: say who may use it", route)
			continue
		}
		if roles == nil {
			continue
		}
		walked++
		path := strings.NewReplacer(":id", id, ":action", "assign").Replace(r.Path)
		call := func(b *browser) (int, string) {
			if r.Method == http.MethodGet {
				status, loc, _ := b.get(path)
				return status, loc
			}
			return b.post("/console/requests/"+id, path, url.Values{"agent": {"desk"}})
		}
		t.Run(route, func(t *testing.T) {
			for role, b := range sessions {
				status, loc := call(b)
				refused := status == http.StatusForbidden || status == http.StatusUnauthorized || strings.HasPrefix(loc, "/console/sign-in")
				if want := contains(roles, role); want == refused {
					t.Errorf("%s: %d %q; allowed: %v", role, status, loc, want)
				}
			}
			status, loc := call(a.browser(t))
			if r.Method == http.MethodGet && (status != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/sign-in")) {
				t.Errorf("no session: %d %q, want 303 to sign-in", status, loc)
			}
			if r.Method != http.MethodGet && status != http.StatusForbidden {
				t.Errorf("no session: %d, want 403", status)
			}
		})
	}
	if walked < 5 {
		t.Fatalf("walked %d console routes: the walk proves nothing", walked)
	}
	// The agent's assign went through; the auditor's did not move it.
	r, err := a.store.Request(context.Background(), id)
	if err != nil || r.AssignedTo != "desk" {
		t.Fatalf("assigned to %q (%v), want desk", r.AssignedTo, err)
	}
}

func contains(roles []apikey.Role, r apikey.Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

// stubAuth registers the sign-in's routes for the walk, as the real one
// does.
type stubAuth struct{}

func (stubAuth) Register(r *gin.Engine) {
	for _, p := range []string{"/console/sign-in"} {
		r.GET(p, func(*gin.Context) {})
		r.POST(p, func(*gin.Context) {})
	}
	r.POST("/console/sign-out", func(*gin.Context) {})
}

func (stubAuth) Require() gin.HandlerFunc { return func(c *gin.Context) { c.Next() } }

// TestPageSecurityHeaders calls every page route (signed in as an admin for
// the console's), and pages that do not exist, and checks every answer
// carries the pages' security headers: a strict CSP with no inline script,
// no framing, nothing cached.
func TestPageSecurityHeaders(t *testing.T) {
	t.Parallel()
	a := setupPages(t)
	id := a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	admin := a.browser(t)
	if status := admin.signIn(adminKey); status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", status)
	}
	h := handlers.New(handlers.Deps{Log: slog.New(slog.DiscardHandler), Keys: apikey.NewKeyring(),
		Pages: webkit.New(webkit.Options{Secrets: [][]byte{make([]byte, 32)}}), ConsoleAuth: stubAuth{}})
	check := func(what string, resp *http.Response) {
		t.Helper()
		csp := resp.Header.Get("Content-Security-Policy")
		dirs := map[string]string{}
		for _, d := range strings.Split(csp, ";") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
			dirs[name] = value
		}
		// As strict or stricter than the pages' policy: scripts and styles
		// from the service alone (or none, or a hashed style: the evidence
		// report's), forms posted only to it (or nowhere).
		for name, ok := range map[string]func(string) bool{
			"default-src":     func(v string) bool { return v == "'none'" },
			"frame-ancestors": func(v string) bool { return v == "'none'" },
			"base-uri":        func(v string) bool { return v == "'none'" },
			"script-src":      func(v string) bool { return v == "'self'" || v == "" },
			"style-src":       func(v string) bool { return v == "'self'" || v == "" || strings.HasPrefix(v, "'sha256-") },
			"form-action":     func(v string) bool { return v == "'self'" || v == "'none'" },
		} {
			v, set := dirs[name]
			if !ok(v) || (!set && name != "script-src" && name != "style-src") {
				t.Errorf("%s: %d: CSP %q: %s %q", what, resp.StatusCode, csp, name, v)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP allows unsafe sources: %q", what, csp)
		}
		for k, want := range map[string]string{"Cache-Control": "no-store", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("%s: %d: %s = %q, want %q", what, resp.StatusCode, k, got, want)
			}
		}
	}
	walked := 0
	for _, r := range apitest.Routes(t, h) {
		if !pageRoute(r.Path) {
			continue
		}
		walked++
		path := strings.NewReplacer(":id", id, ":action", "approve").Replace(r.Path)
		for _, b := range []*browser{admin, a.browser(t)} { // signed in, and not
			var resp *http.Response
			var err error
			if r.Method == http.MethodGet {
				resp, err = b.c.Get(a.url + path)
			} else {
				resp, err = b.c.PostForm(a.url+path, url.Values{"csrf": {"forged"}})
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			check(r.Method+" "+path, resp)
		}
	}
	if walked < 15 {
		t.Fatalf("walked %d page routes: the walk proves nothing", walked)
	}
	for _, path := range []string{"/privacy/nope", "/console/nope", "/privacy/requests/not-an-id", "/console/requests/not-an-id"} {
		resp, err := admin.c.Get(a.url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "<h1>") {
			t.Errorf("%s: %d %s, want an HTML 404 page", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		check("GET "+path, resp)
	}
}

func pageRoute(path string) bool {
	return path == "/privacy" || strings.HasPrefix(path, "/privacy/") || path == "/console" || strings.HasPrefix(path, "/console/")
}
