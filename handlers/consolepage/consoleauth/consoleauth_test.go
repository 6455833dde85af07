package consoleauth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/handlers/consolepage/consoleauth"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/testenv"
)

const (
	idle   = 30 * time.Minute
	maxAge = 2 * time.Hour
)

func key(name string, r apikey.Role) apikey.Key {
	return apikey.Key{Name: name, Role: r, Hash: sha256.Sum256([]byte(name + "-secret"))}
}

var allKeys = []apikey.Key{
	key("ops", apikey.RoleAdmin), key("desk", apikey.RoleAgent), key("audit", apikey.RoleAuditor), key("pipe", apikey.RolePipeline),
}

// env is a console behind the sign-in: GET /console shows the principal
// and a CSRF token, POST /console/act does "something".
type env struct {
	t      *testing.T
	rdb    *redis.Client
	prefix string
	clock  *testenv.Clock
	kit    *webkit.Kit
	auth   *consoleauth.Auth
	h      http.Handler
	acted  int
	logs   *testenv.Buffer
}

type option func(*consoleauth.Options)

func setup(t *testing.T, opts ...option) *env {
	t.Helper()
	gin.SetMode(gin.TestMode)
	srv := testenv.RedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	e := &env{t: t, rdb: rdb, prefix: testenv.Name("dsar_test_console") + ":", clock: testenv.NewClock(time.Now()), // the provider signs tokens with the real time
		kit: webkit.New(webkit.Options{Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}}), logs: &testenv.Buffer{}}
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, e.prefix+"*").Result()
		if len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
		_ = rdb.Close()
		if t.Failed() {
			t.Logf("logs:\n%s", e.logs)
		}
	})
	e.auth, e.h = e.newAuth(apikey.NewKeyring(allKeys...), opts...)
	return e
}

// newAuth returns a sign-in (and its console) on e's Redis and clock with
// keys: a restart with another keyring is a new one.
func (e *env) newAuth(keys *apikey.Keyring, opts ...option) (*consoleauth.Auth, http.Handler) {
	e.t.Helper()
	o := consoleauth.Options{Kit: e.kit, Keys: keys, Redis: e.rdb, Prefix: e.prefix, IdleTimeout: idle, MaxAge: maxAge, Now: e.clock.Now,
		Log: slog.New(slog.NewTextHandler(e.logs, nil))}
	for _, f := range opts {
		f(&o)
	}
	a, err := consoleauth.New(context.Background(), o)
	if err != nil {
		e.t.Fatal(err)
	}
	r := gin.New()
	a.Register(r)
	g := r.Group("/console", e.kit.Headers(), a.Require())
	g.GET("", func(c *gin.Context) {
		p := httpkit.PrincipalOf(c)
		c.String(http.StatusOK, `%s %s <input type="hidden" name="csrf" value="%s">`, p.Name, p.Role, e.kit.CSRF(c))
	})
	g.GET("/requests/:id", func(c *gin.Context) { c.String(http.StatusOK, "request %s", c.Param("id")) })
	g.POST("/act", func(c *gin.Context) { e.acted++; c.String(http.StatusOK, "done") })
	return a, r
}

// sessionKey is where Redis keeps the session of cookie value id.
func (e *env) sessionKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return e.prefix + "session:" + hex.EncodeToString(h[:])
}

// browser keeps cookies across exchanges with h, like a browser would
// (paths aside).
type browser struct {
	t    *testing.T
	h    http.Handler
	host string
	addr string
	jar  map[string]*http.Cookie
}

func (e *env) browser() *browser {
	return &browser{t: e.t, h: e.h, host: "127.0.0.1:8080", addr: "192.0.2.10", jar: map[string]*http.Cookie{}}
}

var lastAddr atomic.Int32

// newAddr returns a client address no other test uses: its own tries.
func newAddr() string {
	n := lastAddr.Add(1)
	return fmt.Sprintf("10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff)
}

func (b *browser) do(method, target string, form url.Values) *httptest.ResponseRecorder {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	req.Host = b.host
	req.RemoteAddr = b.addr + ":40000"
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range b.jar {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.jar, c.Name)
		} else {
			b.jar[c.Name] = c
		}
	}
	return w
}

func (b *browser) get(target string) *httptest.ResponseRecorder {
	return b.do(http.MethodGet, target, nil)
}

func (b *browser) session() string {
	if c := b.jar[consoleauth.CookieName]; c != nil {
		return c.Value
	}
	return ""
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the page at target.
func (b *browser) csrf(target string) string {
	b.t.Helper()
	w := b.get(target)
	m := csrfField.FindStringSubmatch(w.Body.String())
	if m == nil {
		b.t.Fatalf("GET %s: %d, no csrf field in:\n%s", target, w.Code, w.Body.String())
	}
	return m[1]
}

// signIn posts secret on the sign-in form, with next.
func (b *browser) signIn(secret, next string) *httptest.ResponseRecorder {
	b.t.Helper()
	return b.do(http.MethodPost, consoleauth.SignInPath, url.Values{"key": {secret}, "next": {next}, "csrf": {b.csrf(consoleauth.SignInPath)}})
}

func wantStatus(t *testing.T, w *httptest.ResponseRecorder, code int) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("status %d, want %d; Location %q; body:\n%s", w.Code, code, w.Header().Get("Location"), w.Body.String())
	}
}

func wantRedirect(t *testing.T, w *httptest.ResponseRecorder, code int, location string) {
	t.Helper()
	wantStatus(t, w, code)
	if got := w.Header().Get("Location"); got != location {
		t.Fatalf("Location %q, want %q", got, location)
	}
}

func TestSignInWithKey(t *testing.T) {
	e := setup(t)
	b := e.browser()

	wantRedirect(t, b.get("/console/requests/r1?tab=jobs"), http.StatusSeeOther, "/console/sign-in?next=%2Fconsole%2Frequests%2Fr1%3Ftab%3Djobs")
	page := b.get("/console/sign-in?next=%2Fconsole%2Frequests%2Fr1%3Ftab%3Djobs")
	wantStatus(t, page, http.StatusOK)
	for _, want := range []string{`id="sign-in"`, `action="/console/sign-in"`, `name="key"`, `type="password"`, `autocomplete="off"`,
		`id="sign-in-button"`, `name="next" value="/console/requests/r1?tab=jobs"`, `<label for="key">`} {
		if !strings.Contains(page.Body.String(), want) {
			t.Errorf("sign-in page lacks %s", want)
		}
	}
	if strings.Contains(page.Body.String(), `id="oidc"`) {
		t.Error("OIDC link without OIDC")
	}
	if page.Header().Get("Content-Security-Policy") == "" {
		t.Error("sign-in page without the pages' security headers")
	}

	wantRedirect(t, b.signIn("desk-secret", "/console/requests/r1?tab=jobs"), http.StatusSeeOther, "/console/requests/r1?tab=jobs")
	id := b.session()
	if len(id) != 43 {
		t.Fatalf("session cookie %q", id)
	}
	w := b.get("/console")
	wantStatus(t, w, http.StatusOK)
	if !strings.HasPrefix(w.Body.String(), "desk agent ") {
		t.Fatalf("principal: %s", w.Body.String())
	}

	// Redis holds the session under the id's hash, never the id.
	ctx := context.Background()
	raw, err := e.rdb.Get(ctx, e.sessionKey(id)).Result()
	if err != nil {
		t.Fatalf("session not in Redis: %v", err)
	}
	var s map[string]any
	testenv.Must(t, json.Unmarshal([]byte(raw), &s))
	for _, k := range []string{"name", "role", "via", "created", "seen"} {
		if _, ok := s[k]; !ok {
			t.Errorf("session lacks %q: %s", k, raw)
		}
	}
	if s["name"] != "desk" || s["role"] != "agent" || s["via"] != "key" {
		t.Errorf("session %s", raw)
	}
	keys, _ := e.rdb.Keys(ctx, e.prefix+"*").Result()
	for _, k := range keys {
		if strings.Contains(k, id) {
			t.Errorf("Redis key %q holds the session id", k)
		}
	}
	if ttl := e.rdb.PTTL(ctx, e.sessionKey(id)).Val(); ttl > idle || ttl < idle-time.Minute {
		t.Errorf("TTL %v, want the idle timeout %v", ttl, idle)
	}
}

func TestSignInRefused(t *testing.T) {
	e := setup(t)
	for _, tc := range []struct {
		name, secret string
		code         int
		message      string
	}{
		{"wrong key", "nope", http.StatusUnauthorized, "This key is not valid"},
		{"no key", "", http.StatusUnauthorized, "This key is not valid"},
		{"huge key", strings.Repeat("x", 10<<10), http.StatusUnauthorized, "This key is not valid"},
		{"pipeline key", "pipe-secret", http.StatusForbidden, "role has no console"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			b.addr = newAddr()
			w := b.signIn(tc.secret, "")
			wantStatus(t, w, tc.code)
			body := w.Body.String()
			for _, want := range []string{tc.message, `role="alert"`, `id="sign-in"`, `aria-invalid="true"`} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q:\n%s", want, body)
				}
			}
			if b.session() != "" {
				t.Fatal("a session cookie was set")
			}
		})
	}
	// The refusal does not say whether a key exists.
	b := e.browser()
	b.addr = "192.0.2.99"
	if w := b.signIn("ops-secretX", ""); strings.Contains(w.Body.String(), "ops") {
		t.Errorf("refusal names a key:\n%s", w.Body.String())
	}
}

func TestSignInCSRF(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.get(consoleauth.SignInPath) // CSRF cookie
	w := b.do(http.MethodPost, consoleauth.SignInPath, url.Values{"key": {"desk-secret"}})
	wantStatus(t, w, http.StatusForbidden)
	if b.session() != "" {
		t.Fatal("signed in without a CSRF token")
	}
}

func TestSignInTriesLimited(t *testing.T) {
	e := setup(t)
	b := e.browser()
	for i := range 10 {
		if w := b.signIn("nope", ""); w.Code != http.StatusUnauthorized {
			t.Fatalf("try %d: %d", i+1, w.Code)
		}
	}
	w := b.signIn("desk-secret", "") // even the right key, now
	wantStatus(t, w, http.StatusTooManyRequests)
	if w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "Too many sign-in attempts") {
		t.Fatalf("429 without Retry-After or message: %v\n%s", w.Header(), w.Body.String())
	}
	if b.session() != "" {
		t.Fatal("signed in over the limit")
	}
	// Another address has its own tries.
	other := e.browser()
	other.addr = "198.51.100.7"
	wantRedirect(t, other.signIn("desk-secret", ""), http.StatusSeeOther, "/console")
	// No address in clear in Redis.
	keys, _ := e.rdb.Keys(context.Background(), e.prefix+"*").Result()
	for _, k := range keys {
		if strings.Contains(k, "192.0.2.10") || strings.Contains(k, "198.51.100.7") {
			t.Errorf("Redis key %q holds an address", k)
		}
	}
}

func TestSessionFixation(t *testing.T) {
	e := setup(t)
	// An attacker signs in, then plants their session id in the victim's
	// browser (or any well-formed id of their making).
	attacker := e.browser()
	attacker.signIn("audit-secret", "")
	planted := attacker.session()
	for _, plant := range []string{planted, strings.Repeat("A", 43)} {
		victim := e.browser()
		victim.jar[consoleauth.CookieName] = &http.Cookie{Name: consoleauth.CookieName, Value: plant}
		wantRedirect(t, victim.signIn("desk-secret", ""), http.StatusSeeOther, "/console")
		if victim.session() == plant {
			t.Fatal("the planted id is the session after sign-in")
		}
		if w := victim.get("/console"); !strings.HasPrefix(w.Body.String(), "desk ") {
			t.Fatalf("victim's session: %d %s", w.Code, w.Body.String())
		}
	}
	// The planted session, replaced by the victim's sign-in, is gone.
	if n := e.rdb.Exists(context.Background(), e.sessionKey(planted)).Val(); n != 0 {
		t.Fatal("the planted session survived the sign-in")
	}
}

func TestIdleTimeout(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signIn("desk-secret", "")
	id := b.session()
	ctx := context.Background()
	for range 3 { // used every 25 minutes: stays
		e.clock.Add(25 * time.Minute)
		wantStatus(t, b.get("/console"), http.StatusOK)
		if ttl := e.rdb.PTTL(ctx, e.sessionKey(id)).Val(); ttl < idle-time.Minute {
			t.Fatalf("TTL not refreshed on use: %v", ttl)
		}
	}
	e.clock.Add(idle)
	wantRedirect(t, b.get("/console/requests/r9"), http.StatusSeeOther, "/console/sign-in?next=%2Fconsole%2Frequests%2Fr9&reason=idle")
	if b.session() != "" {
		t.Error("the ended session's cookie was kept")
	}
	if n := e.rdb.Exists(ctx, e.sessionKey(id)).Val(); n != 0 {
		t.Error("the idle session is still in Redis")
	}
	page := b.get("/console/sign-in?next=%2Fconsole%2Frequests%2Fr9&reason=idle").Body.String()
	if !strings.Contains(page, "it was unused for 30 minutes") {
		t.Fatalf("sign-in page does not say why:\n%s", page)
	}

	// Redis expiring the session (its TTL) ends it the same way.
	b.signIn("desk-secret", "")
	testenv.Must(t, e.rdb.PExpire(ctx, e.sessionKey(b.session()), time.Millisecond).Err())
	time.Sleep(20 * time.Millisecond)
	wantRedirect(t, b.get("/console"), http.StatusSeeOther, "/console/sign-in?reason=idle")
}

func TestMaxAge(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signIn("desk-secret", "")
	id := b.session()
	ctx := context.Background()
	for range 5 { // 1h40m of steady use
		e.clock.Add(20 * time.Minute)
		wantStatus(t, b.get("/console"), http.StatusOK)
	}
	// 20 minutes of age left: Redis keeps it no longer.
	if ttl := e.rdb.PTTL(ctx, e.sessionKey(id)).Val(); ttl > 20*time.Minute {
		t.Fatalf("TTL %v outlives the session's age", ttl)
	}
	e.clock.Add(20 * time.Minute)
	wantRedirect(t, b.get("/console"), http.StatusSeeOther, "/console/sign-in?reason=age")
	if n := e.rdb.Exists(ctx, e.sessionKey(id)).Val(); n != 0 {
		t.Error("the aged session is still in Redis")
	}
	if page := b.get("/console/sign-in?reason=age").Body.String(); !strings.Contains(page, "limit of 2 hours") {
		t.Fatalf("sign-in page does not say why:\n%s", page)
	}
}

func TestKeyringChangeEndsSession(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []apikey.Key
	}{
		{"key removed", []apikey.Key{key("ops", apikey.RoleAdmin)}},
		{"role changed", []apikey.Key{key("desk", apikey.RoleAuditor)}},
		{"role became pipeline", []apikey.Key{key("desk", apikey.RolePipeline)}},
		{"new secret under the same name", []apikey.Key{{Name: "desk", Role: apikey.RoleAgent, Hash: sha256.Sum256([]byte("rotated"))}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			b := e.browser()
			b.signIn("desk-secret", "")
			id := b.session()
			_, b.h = e.newAuth(apikey.NewKeyring(tc.keys...)) // a restart with the new keyring
			wantRedirect(t, b.get("/console"), http.StatusSeeOther, "/console/sign-in?reason=revoked")
			if n := e.rdb.Exists(context.Background(), e.sessionKey(id)).Val(); n != 0 {
				t.Error("the revoked session is still in Redis")
			}
			if page := b.get("/console/sign-in?reason=revoked").Body.String(); !strings.Contains(page, "no longer gives access") {
				t.Fatalf("sign-in page does not say why:\n%s", page)
			}
		})
	}
}

func TestSessionOutlivesRestart(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signIn("desk-secret", "")
	_, b.h = e.newAuth(apikey.NewKeyring(allKeys...))
	wantStatus(t, b.get("/console"), http.StatusOK)
}

func TestSignOut(t *testing.T) {
	e := setup(t)
	b := e.browser()
	preSignIn := b.csrf(consoleauth.SignInPath)
	b.signIn("ops-secret", "")
	id := b.session()
	token := b.csrf("/console")
	ctx := context.Background()

	// Without the session's token: refused, still signed in.
	for _, bad := range []string{"", preSignIn} {
		wantStatus(t, b.do(http.MethodPost, consoleauth.SignOutPath, url.Values{"csrf": {bad}}), http.StatusForbidden)
		if e.rdb.Exists(ctx, e.sessionKey(id)).Val() != 1 {
			t.Fatal("a sign-out without the token ended the session")
		}
	}
	wantRedirect(t, b.do(http.MethodPost, consoleauth.SignOutPath, url.Values{"csrf": {token}}), http.StatusSeeOther, "/console/sign-in?reason=signout")
	if b.session() != "" {
		t.Error("sign-out kept the cookie")
	}
	if e.rdb.Exists(ctx, e.sessionKey(id)).Val() != 0 {
		t.Fatal("sign-out left the session in Redis")
	}
	if page := b.get("/console/sign-in?reason=signout").Body.String(); !strings.Contains(page, "You are signed out.") {
		t.Fatalf("sign-in page:\n%s", page)
	}
	// The old cookie, replayed, is worth nothing.
	b.jar[consoleauth.CookieName] = &http.Cookie{Name: consoleauth.CookieName, Value: id}
	if w := b.get("/console"); w.Code != http.StatusSeeOther {
		t.Fatalf("old cookie after sign-out: %d", w.Code)
	}
}

func TestRequireCSRF(t *testing.T) {
	e := setup(t)
	b := e.browser()
	preSignIn := b.csrf(consoleauth.SignInPath)
	b.signIn("desk-secret", "")
	token := b.csrf("/console")
	other := e.browser()
	other.signIn("ops-secret", "")
	otherToken := other.csrf("/console")

	for _, tc := range []struct {
		name  string
		token string
		hdr   map[string]string
		want  int
	}{
		{"no token", "", nil, http.StatusForbidden},
		{"token from before sign-in", preSignIn, nil, http.StatusForbidden},
		{"another session's token", otherToken, nil, http.StatusForbidden},
		{"cross-site", token, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"the session's token", token, nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.acted
			req := httptest.NewRequest(http.MethodPost, "/console/act", strings.NewReader(url.Values{"csrf": {tc.token}}.Encode()))
			req.Host, req.RemoteAddr = b.host, b.addr+":1"
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			for _, c := range b.jar {
				req.AddCookie(c)
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, req)
			wantStatus(t, w, tc.want)
			if done := e.acted - before; (tc.want == http.StatusOK) != (done == 1) {
				t.Fatalf("acted %d times", done)
			}
		})
	}

	// Without a session, an unsafe method is a 403 page, not a redirect.
	anon := e.browser()
	w := anon.do(http.MethodPost, "/console/act", url.Values{"csrf": {token}})
	wantStatus(t, w, http.StatusForbidden)
	if !strings.Contains(w.Body.String(), "You are not signed in") {
		t.Fatalf("403 page:\n%s", w.Body.String())
	}
}

func TestNextIsNeverAnotherSite(t *testing.T) {
	e := setup(t)
	for _, tc := range []struct{ next, want string }{
		{"/console/requests/r1", "/console/requests/r1"},
		{"/console/dashboard?weeks=12", "/console/dashboard?weeks=12"},
		{"/console/", "/console/"},
		{"", "/console"},
		{"//evil.example", "/console"},
		{"//evil.example/console", "/console"},
		{"https://evil.example", "/console"},
		{"https://evil.example/console", "/console"},
		{"/console/../x", "/console"},
		{"/console/%2e%2e/x", "/console"},
		{"/console/..%2fx", "/console"},
		{"/console//evil.example", "/console"},
		{"/\\evil.example", "/console"},
		{"/console\\..\\x", "/console"},
		{"javascript:alert(1)", "/console"},
		{"JavaScript:alert(1)", "/console"},
		{"/consolex", "/console"},
		{"/privacy", "/console"},
		{"console/requests", "/console"},
		{"/console/requests/r1\r\nSet-Cookie: x=1", "/console"},
		{"/console/sign-in?next=//evil.example", "/console"},
		{"/console/oidc/start", "/console"},
		{" /console", "/console"},
	} {
		t.Run(tc.next, func(t *testing.T) {
			b := e.browser()
			b.addr = newAddr()
			wantRedirect(t, b.signIn("desk-secret", tc.next), http.StatusSeeOther, tc.want)
			// The sign-in page's ?next= is held to the same.
			page := b.get("/console/sign-in?" + url.Values{"next": {tc.next}}.Encode()).Body.String()
			if want := `name="next" value="` + tc.want + `"`; !strings.Contains(page, want) {
				t.Fatalf("sign-in page lacks %s", want)
			}
		})
	}
}

func TestCookieFlags(t *testing.T) {
	e := setup(t)
	for _, tc := range []struct {
		host   string
		secure bool
	}{
		{"127.0.0.1:8080", false},
		{"localhost:8080", false},
		{"dsar.example.com", true},
	} {
		t.Run(tc.host, func(t *testing.T) {
			b := e.browser()
			b.host = tc.host
			b.addr = newAddr()
			b.signIn("desk-secret", "")
			c := b.jar[consoleauth.CookieName]
			if c == nil {
				t.Fatal("no session cookie")
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console" || c.Secure != tc.secure {
				t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/console, Secure=%v", c, tc.secure)
			}
			if c.MaxAge <= 0 || c.MaxAge > int(maxAge.Seconds()) {
				t.Fatalf("cookie Max-Age %d outlives the session (%v)", c.MaxAge, maxAge)
			}
		})
	}
}

func TestForgedCookies(t *testing.T) {
	e := setup(t)
	victim := e.browser()
	victim.signIn("ops-secret", "")
	real := victim.session()
	for _, tc := range []struct{ name, value string }{
		{"random well-formed", strings.Repeat("Q", 43)},
		{"hash of a session", e.sessionKey(real)[len(e.prefix+"session:"):]},
		{"one character off", real[:42] + map[bool]string{true: "B", false: "A"}[real[42] == 'A']},
		{"too long", real + "A"},
		{"huge", strings.Repeat("A", 64<<10)},
		{"not base64url", strings.Repeat("*", 43)},
		{"redis glob", strings.Repeat("*", 42) + "?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.value == real {
				t.Skip("same as the real one")
			}
			b := e.browser()
			b.jar[consoleauth.CookieName] = &http.Cookie{Name: consoleauth.CookieName, Value: tc.value}
			w := b.get("/console")
			if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), consoleauth.SignInPath) {
				t.Fatalf("forged cookie: %d %s", w.Code, w.Body.String())
			}
			wantStatus(t, b.do(http.MethodPost, "/console/act", url.Values{}), http.StatusForbidden)
		})
	}
	if e.acted != 0 {
		t.Fatal("a forged cookie acted")
	}
	wantStatus(t, victim.get("/console"), http.StatusOK)
}

func TestConcurrentSignIns(t *testing.T) {
	e := setup(t)
	const n = 8 // within the tries of one address
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := e.browser() // used for its host and address only: no t.Fatal off the test's goroutine
			w := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, consoleauth.SignInPath, nil)
			req.Host, req.RemoteAddr = b.host, b.addr+":1"
			e.h.ServeHTTP(w, req)
			m := csrfField.FindStringSubmatch(w.Body.String())
			csrf := w.Result().Cookies()
			if m == nil || len(csrf) == 0 {
				return
			}
			req = httptest.NewRequest(http.MethodPost, consoleauth.SignInPath, strings.NewReader(url.Values{"key": {"desk-secret"}, "csrf": {m[1]}}.Encode()))
			req.Host, req.RemoteAddr = b.host, b.addr+":1"
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(csrf[0])
			w = httptest.NewRecorder()
			e.h.ServeHTTP(w, req)
			for _, c := range w.Result().Cookies() {
				if c.Name == consoleauth.CookieName {
					ids[i] = c.Value
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, id := range ids {
		if id == "" || seen[id] {
			t.Fatalf("sign-in %d: id %q (empty or shared)", i, id)
		}
		seen[id] = true
		if e.rdb.Exists(context.Background(), e.sessionKey(id)).Val() != 1 {
			t.Fatalf("sign-in %d: no session", i)
		}
	}
}

func TestNewRequires(t *testing.T) {
	if _, err := consoleauth.New(context.Background(), consoleauth.Options{}); err == nil {
		t.Fatal("New without Kit, Keys and Redis")
	}
}

func ExampleAuth() {
	// The console's pages go behind Require; its nav signs out with a form:
	// <form method="post" action="/console/sign-out"><input type="hidden" name="csrf" value="{{.CSRF}}"><button>…</button></form>
	fmt.Println(consoleauth.SignOutPath)
	// Output: /console/sign-out
}
