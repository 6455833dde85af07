package consoleauth_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/dsar-project/dsar/handlers/consolepage/consoleauth"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/testenv"
)

// issuer starts a mock OpenID Connect provider for the test.
func issuer(t *testing.T) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

func withOIDC(m *mockoidc.MockOIDC) option {
	return func(o *consoleauth.Options) {
		o.OIDC = &consoleauth.OIDCConfig{Issuer: m.Issuer(), ClientID: m.ClientID, ClientSecret: m.ClientSecret,
			RedirectURL: "http://127.0.0.1:8080" + consoleauth.OIDCCallbackPath, RoleClaim: "groups",
			Roles: map[string]apikey.Role{"grp-agents": apikey.RoleAgent, "grp-auditors": apikey.RoleAuditor, "grp-pipes": apikey.RolePipeline}}
	}
}

// noRedirects is a client to the provider that stops at its redirect, as
// a browser's own would be followed by hand.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorize starts a sign-in with the provider in b and returns the
// callback URL (path and query) the provider sends the browser back to.
func authorize(t *testing.T, b *browser, next string) string {
	t.Helper()
	return authorizeTampered(t, b, next, nil)
}

// authorizeTampered is authorize with the authorization request's
// parameters changed by tamper on their way to the provider.
func authorizeTampered(t *testing.T, b *browser, next string, tamper func(url.Values)) string {
	t.Helper()
	target := consoleauth.OIDCStartPath
	if next != "" {
		target += "?next=" + url.QueryEscape(next)
	}
	w := b.get(target)
	wantStatus(t, w, http.StatusFound)
	c := b.jar["dsar_oidc"]
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/console/oidc" {
		t.Fatalf("state cookie %+v", c)
	}
	loc, err := url.Parse(w.Header().Get("Location"))
	testenv.Must(t, err)
	q := loc.Query()
	for _, p := range []string{"state", "nonce", "code_challenge"} {
		if q.Get(p) == "" {
			t.Fatalf("authorization URL lacks %s: %s", p, loc)
		}
	}
	if q.Get("code_challenge_method") != "S256" || !strings.Contains(q.Get("scope"), "groups") {
		t.Fatalf("authorization URL %s", loc)
	}
	if tamper != nil {
		tamper(q)
		loc.RawQuery = q.Encode()
	}
	resp, err := noRedirects.Get(loc.String())
	testenv.Must(t, err)
	_ = resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("provider answered %d %v", resp.StatusCode, err)
	}
	return back.RequestURI()
}

func TestOIDCSignIn(t *testing.T) {
	m := issuer(t)
	e := setup(t, withOIDC(m))
	b := e.browser()
	if page := b.get(consoleauth.SignInPath + "?next=%2Fconsole%2Fdashboard").Body.String(); !strings.Contains(page, `id="oidc" href="/console/oidc/start?next=%2fconsole%2fdashboard"`) {
		t.Fatalf("sign-in page lacks the OIDC link:\n%s", page)
	}
	m.QueueUser(&mockoidc.MockUser{Subject: "u-1001", Email: "agent@example.com", Groups: []string{"engineering", "grp-auditors", "grp-agents"}})
	callback := authorize(t, b, "/console/dashboard")
	w := b.get(callback)
	wantStatus(t, w, http.StatusOK)
	if got := w.Header().Get("Refresh"); got != "0; url=/console/dashboard" {
		t.Fatalf("Refresh %q", got)
	}
	if !strings.Contains(w.Body.String(), `href="/console/dashboard"`) {
		t.Fatalf("no link onwards:\n%s", w.Body.String())
	}
	if strings.Contains(w.Body.String(), "code=") {
		t.Error("the page links to the callback's code")
	}
	if b.jar["dsar_oidc"] != nil {
		t.Error("state cookie kept after the callback")
	}
	c := b.jar[consoleauth.CookieName]
	if c == nil || c.SameSite != http.SameSiteStrictMode || !c.HttpOnly {
		t.Fatalf("session cookie %+v", c)
	}
	// The highest role mapped from the groups; the name is the subject,
	// never the email.
	if got := b.get("/console").Body.String(); !strings.HasPrefix(got, "oidc:u-1001 agent ") {
		t.Fatalf("principal: %s", got)
	}
	raw := e.rdb.Get(context.Background(), e.sessionKey(c.Value)).Val()
	if !strings.Contains(raw, `"via":"oidc"`) || strings.Contains(raw, "example.com") {
		t.Fatalf("session %s", raw)
	}

	if logs := e.logs.String(); strings.Contains(logs, "example.com") || !strings.Contains(logs, "principal=oidc:u-1001") {
		t.Errorf("logs:\n%s", logs)
	}

	// The callback, replayed (state used), is refused.
	b2 := e.browser()
	b2.jar["dsar_oidc"] = &http.Cookie{Name: "dsar_oidc", Value: mustQuery(t, callback, "state")}
	w = b2.get(callback)
	wantStatus(t, w, http.StatusForbidden)
	if b2.session() != "" {
		t.Fatal("a replayed callback signed in")
	}
}

func mustQuery(t *testing.T, uri, name string) string {
	t.Helper()
	u, err := url.Parse(uri)
	testenv.Must(t, err)
	return u.Query().Get(name)
}

func TestOIDCRefused(t *testing.T) {
	m := issuer(t)
	e := setup(t, withOIDC(m))
	for _, tc := range []struct {
		name   string
		groups []string
		// tamper changes the callback (path and query) and the browser.
		tamper  func(t *testing.T, b *browser, callback string) string
		message string
	}{
		{"no mapped group", []string{"engineering"}, nil, "not in a group that gives access"},
		{"only a pipeline group", []string{"grp-pipes"}, nil, "not in a group that gives access"},
		{"no groups", nil, nil, "not in a group that gives access"},
		{"subject with a newline", []string{"grp-agents"}, nil, "could not be completed"},
		{"state of another browser", []string{"grp-agents"}, func(t *testing.T, b *browser, cb string) string {
			b.jar["dsar_oidc"] = &http.Cookie{Name: "dsar_oidc", Value: strings.Repeat("x", 43)}
			return cb
		}, "could not be completed"},
		{"no state cookie", []string{"grp-agents"}, func(t *testing.T, b *browser, cb string) string {
			delete(b.jar, "dsar_oidc")
			return cb
		}, "could not be completed"},
		{"state changed", []string{"grp-agents"}, func(t *testing.T, b *browser, cb string) string {
			u, _ := url.Parse(cb)
			q := u.Query()
			q.Set("state", "forged")
			b.jar["dsar_oidc"] = &http.Cookie{Name: "dsar_oidc", Value: "forged"}
			u.RawQuery = q.Encode()
			return u.RequestURI()
		}, "could not be completed"},
		{"code changed", []string{"grp-agents"}, func(t *testing.T, b *browser, cb string) string {
			u, _ := url.Parse(cb)
			q := u.Query()
			q.Set("code", "forged")
			u.RawQuery = q.Encode()
			return u.RequestURI()
		}, "could not be completed"},
		{"provider error", []string{"grp-agents"}, func(t *testing.T, b *browser, cb string) string {
			return consoleauth.OIDCCallbackPath + "?error=access_denied&state=" + url.QueryEscape(mustQuery(t, cb, "state"))
		}, "could not be completed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			b.addr = newAddr()
			sub := "u-2002"
			if strings.Contains(tc.name, "newline") {
				sub = "u-2002\nlevel=ERROR"
			}
			m.QueueUser(&mockoidc.MockUser{Subject: sub, Groups: tc.groups})
			cb := authorize(t, b, "")
			if tc.tamper != nil {
				cb = tc.tamper(t, b, cb)
			}
			w := b.get(cb)
			wantStatus(t, w, http.StatusForbidden)
			if !strings.Contains(w.Body.String(), tc.message) {
				t.Fatalf("page lacks %q:\n%s", tc.message, w.Body.String())
			}
			if b.session() != "" {
				t.Fatal("signed in")
			}
		})
	}
}

func TestOIDCPKCE(t *testing.T) {
	// A code the provider issued to another start (another verifier) is
	// refused: the verifier kept for this state does not match.
	m := issuer(t)
	e := setup(t, withOIDC(m))
	a, b := e.browser(), e.browser()
	b.addr = newAddr()
	m.QueueUser(&mockoidc.MockUser{Subject: "u-a", Groups: []string{"grp-agents"}})
	m.QueueUser(&mockoidc.MockUser{Subject: "u-b", Groups: []string{"grp-agents"}})
	cbA, cbB := authorize(t, a, ""), authorize(t, b, "")
	// b's state and cookie with a's code.
	u, _ := url.Parse(cbB)
	q := u.Query()
	q.Set("code", mustQuery(t, cbA, "code"))
	u.RawQuery = q.Encode()
	wantStatus(t, b.get(u.RequestURI()), http.StatusForbidden)
	if b.session() != "" {
		t.Fatal("signed in with another start's code")
	}
}

func TestOIDCAuthorizationTampered(t *testing.T) {
	m := issuer(t)
	e := setup(t, withOIDC(m))
	for name, tamper := range map[string]func(url.Values){
		"nonce":          func(q url.Values) { q.Set("nonce", "attacker-nonce") },
		"code challenge": func(q url.Values) { q.Set("code_challenge", strings.Repeat("A", 43)) },
		"plain pkce":     func(q url.Values) { q.Set("code_challenge_method", "plain") },
	} {
		t.Run(name, func(t *testing.T) {
			b := e.browser()
			b.addr = newAddr()
			m.QueueUser(&mockoidc.MockUser{Subject: "u-3003", Groups: []string{"grp-agents"}})
			wantStatus(t, b.get(authorizeTampered(t, b, "", tamper)), http.StatusForbidden)
			if b.session() != "" {
				t.Fatal("signed in")
			}
		})
	}
}

func TestOIDCStartsLimited(t *testing.T) {
	m := issuer(t)
	e := setup(t, withOIDC(m))
	b := e.browser()
	b.addr = newAddr()
	for range 10 {
		wantStatus(t, b.get(consoleauth.OIDCStartPath), http.StatusFound)
	}
	w := b.get(consoleauth.OIDCStartPath)
	wantStatus(t, w, http.StatusTooManyRequests)
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

func TestOIDCIssuerMustAnswer(t *testing.T) {
	e := setup(t)
	for _, iss := range []string{"http://" + testenv.ClosedAddr(t), ""} {
		_, err := consoleauth.New(context.Background(), consoleauth.Options{Kit: e.kit, Keys: apikey.NewKeyring(), Redis: e.rdb,
			OIDC: &consoleauth.OIDCConfig{Issuer: iss, ClientID: "c", RedirectURL: "http://127.0.0.1/console/oidc/callback"}})
		if err == nil {
			t.Fatalf("New with issuer %q: no error", iss)
		}
	}
}

func TestOIDCRoutesOnlyWhenConfigured(t *testing.T) {
	e := setup(t)
	b := e.browser()
	if w := b.get(consoleauth.OIDCStartPath); w.Code != http.StatusNotFound {
		t.Fatalf("OIDC start without OIDC: %d", w.Code)
	}
}
