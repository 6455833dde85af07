package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/dsar-project/dsar/internal/browsertest"
	"github.com/dsar-project/dsar/internal/testenv"
)

// More of the pages in a real browser: the emailed link opened on another
// device, the preference centre and consent history, and the console's
// sign-in with OpenID Connect.

var (
	statusAddress = regexp.MustCompile(`/privacy/requests/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(\?[^#]*)?$`)
	emailedLink   = regexp.MustCompile(`https?://\S+/privacy/verify#request=[0-9a-f-]{36}&token=[A-Za-z0-9_-]+`)
	sixDigits     = regexp.MustCompile(`\b(\d{6})\b`)
)

// startWithMailbox runs `dsar dev --demo` sending its emails to a test
// SMTP server, and returns both.
func startWithMailbox(t *testing.T) (*proc, *testenv.SMTPServer) {
	t.Helper()
	r := testenv.RedisServer(t)
	mailbox := testenv.StartSMTP(t, testenv.SMTPOptions{})
	env := append(baseEnv(t, t.TempDir(), r.Addr, testenv.Queue(t, r), testenv.Name("e2e")),
		"DSAR_SMTP_HOST="+mailbox.Host, fmt.Sprintf("DSAR_SMTP_PORT=%d", mailbox.Port), "DSAR_SMTP_TLS=none",
		"DSAR_SMTP_USERNAME="+mailbox.Username, "DSAR_SMTP_PASSWORD="+mailbox.Password, "DSAR_SMTP_FROM=Privacy <privacy@shop.example>")
	return startDSAR(t, env, "dev", "--demo"), mailbox
}

// fileOnPortal sends the portal's request form from the tab (a right, an
// email, a law, and for an opt-out the uses to stop) and returns the new
// request's id, read from the status page's address.
func fileOnPortal(t *testing.T, ctx context.Context, base, typ, email, regulation string, scopes ...string) string {
	t.Helper()
	browsertest.Do(t, ctx,
		chromedp.Navigate(base+"/privacy"),
		chromedp.WaitVisible(chromedp.CSS("#request-form")),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#request-form input[name="type"][value=%q]`, typ))),
		chromedp.SendKeys(chromedp.CSS(`#request-form input[name="email"]`), email),
		chromedp.SetValue(chromedp.CSS(`#request-form select[name="regulation"]`), regulation),
	)
	for _, s := range scopes {
		browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS("#scope-"+s)))
	}
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS("#submit")), chromedp.WaitVisible(chromedp.CSS("#status")))
	loc := browsertest.Run(t, ctx, chromedp.Location())
	m := statusAddress.FindStringSubmatch(loc)
	if m == nil {
		t.Fatalf("after filing a %s, the tab is at %s, not a request's status page", typ, loc)
	}
	return m[1]
}

// linkFor returns the link of the verification email to email.
func linkFor(t *testing.T, mailbox *testenv.SMTPServer, email string) string {
	t.Helper()
	link := emailedLink.FindString(mailText(t, mailbox, email, "verify"))
	if link == "" {
		t.Fatalf("no verification link in the email to %s", email)
	}
	return link
}

// openLink opens the emailed link in the tab and waits for its form. The
// tab goes by about:blank first: the page takes the fragment out of the
// address bar, and the link from there would only move to the fragment.
func openLink(t *testing.T, ctx context.Context, link string) {
	t.Helper()
	browsertest.Do(t, ctx,
		chromedp.Navigate("about:blank"),
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS("#verify-link-form")),
	)
}

// wantVerified checks the tab is at request id's status page after a
// verification, and the request is no longer waiting for it.
func wantVerified(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	loc := browsertest.Run(t, ctx, chromedp.Location())
	if m := statusAddress.FindStringSubmatch(loc); m == nil || m[1] != id || !strings.Contains(loc, "done=verified") {
		t.Errorf("after the link, the tab is at %s, not request %s's page saying it is verified", loc, id)
	}
	if st := browsertest.Run(t, ctx, chromedp.AttributeValue(chromedp.CSS("#status"), "data-status")); st.Value == "verifying" || st.Value == "" {
		t.Errorf("after the link, request %s is %q", id, st.Value)
	}
}

// TestBrowserPortalEmailedLink is a person who follows the verification
// email's link: on another device (no portal cookie) the page asks for the
// request's reference, shown on the status page where they filed it; on the
// device where they filed it, it does not. Then a fresh browser opens a
// request by its number and reference.
func TestBrowserPortalEmailedLink(t *testing.T) {
	b := browsertest.Start(t)
	p, mailbox := startWithMailbox(t)

	// Ada asks for her data; the status page shows the reference.
	filed := b.NewTab(t, browsertest.TabOptions{})
	ada := fileOnPortal(t, filed, p.base, "access", "ada@example.com", "gdpr")
	ref := strings.TrimSpace(browsertest.Run(t, filed, chromedp.TextContent(chromedp.CSS("#reference"))))
	if ref == "" {
		t.Fatal("the status page shows no reference")
	}

	// She opens the email on her phone: the link's page asks for it.
	link := linkFor(t, mailbox, "ada@example.com")
	phone := b.NewTab(t, browsertest.TabOptions{Viewport: browsertest.Mobile})
	for _, v := range []browsertest.Viewport{browsertest.Desktop, browsertest.Mobile} {
		browsertest.SetViewport(t, phone, v)
		openLink(t, phone, link) // again at each size: a reload would find the fragment gone
		browsertest.Check(t, phone, "portal-verify-link")
	}
	if loc := browsertest.Run(t, phone, chromedp.Location()); strings.Contains(loc, "token") {
		t.Errorf("the link's token stays in the address bar: %s", loc)
	}
	browsertest.Do(t, phone,
		chromedp.SendKeys(chromedp.CSS("#link-reference"), ref),
		chromedp.Click(chromedp.CSS("#verify-link")),
		chromedp.WaitVisible(chromedp.CSS("#status")),
	)
	wantVerified(t, phone, ada)
	checkPage(t, phone, "portal-status-verified-by-link")

	// Grace follows her link in the browser she filed from: its cookie
	// opens the request, the reference stays empty.
	grace := fileOnPortal(t, filed, p.base, "access", "grace@example.com", "gdpr")
	openLink(t, filed, linkFor(t, mailbox, "grace@example.com"))
	browsertest.Do(t, filed, chromedp.Click(chromedp.CSS("#verify-link")), chromedp.WaitVisible(chromedp.CSS("#status")))
	wantVerified(t, filed, grace)

	// Another browser opens Ada's request by its number and reference.
	other := b.NewTab(t, browsertest.TabOptions{})
	browsertest.Do(t, other, chromedp.Navigate(p.base+"/privacy/check"), chromedp.WaitVisible(chromedp.CSS("#check-form")))
	checkPage(t, other, "portal-check")
	browsertest.Do(t, other,
		chromedp.SendKeys(chromedp.CSS("#check-request"), ada),
		chromedp.SendKeys(chromedp.CSS("#check-reference"), ref),
		chromedp.Click(chromedp.CSS("#check")),
		chromedp.WaitVisible(chromedp.CSS("#status")),
	)
	if got := browsertest.Run(t, other, chromedp.TextContent(chromedp.CSS("#request-id"))); got != ada {
		t.Errorf("the check opened request %q, not %s", got, ada)
	}
	if loc := browsertest.Run(t, other, chromedp.Location()); !strings.Contains(loc, "done=opened") {
		t.Errorf("after the check, the tab is at %s", loc)
	}
}

// portalText is the portal's English catalogue (message key -> text).
func portalText(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "handlers", "portalpage", "messages", "en.json"))
	if err != nil {
		t.Fatal(err)
	}
	var en map[string]string
	if err := json.Unmarshal(data, &en); err != nil {
		t.Fatalf("portalpage's en.json: %v", err)
	}
	return en
}

// refused returns, per purpose of the preference centre's form, whether
// its box (refuse it) is ticked.
func refused(t *testing.T, ctx context.Context) map[string]bool {
	t.Helper()
	return browsertest.Run(t, ctx, chromedp.Evaluate[map[string]bool](
		`Object.fromEntries([...document.querySelectorAll('#preferences-form input[name="refuse"]')].map(el => [el.value, el.checked]))`))
}

// TestBrowserPortalPreferences is a person who stops marketing with an
// opt-out (no code asked), proves their email with an access request,
// then allows marketing again and stops profiling in the preference
// centre, and reads it all in their consent history.
func TestBrowserPortalPreferences(t *testing.T) {
	b := browsertest.Start(t)
	p, mailbox := startWithMailbox(t)
	en := portalText(t)
	ctx := b.NewTab(t, browsertest.TabOptions{})

	// The opt-out, marketing only: no code; it runs at once.
	fileOnPortal(t, ctx, p.base, "opt_out", "bob@example.com", "ccpa", "marketing")
	if exists(t, ctx, "#verify-form") {
		t.Error("the opt-out asks for a code")
	}
	if exists(t, ctx, "#preferences-link") {
		t.Error("an opt-out's page links the preferences: its identities are the filer's word (docs/portal.md)")
	}
	scopes := browsertest.Run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("dl.facts ul.plain li")].map(li => li.textContent.trim())`))
	if !slices.Equal(scopes, []string{en["portal.scope.marketing"]}) {
		t.Errorf("the opt-out stops %q, want marketing only", scopes)
	}
	reloadUntil(t, ctx, `#status[data-status="completed"]`, time.Minute)
	checkPage(t, ctx, "portal-status-opt-out")

	// The preference centre needs a proven email: Bob asks for his data
	// and types the code.
	fileOnPortal(t, ctx, p.base, "access", "bob@example.com", "ccpa")
	code := sixDigits.FindStringSubmatch(mailText(t, mailbox, "bob@example.com", "verify"))
	if code == nil {
		t.Fatal("no code in the verification email")
	}
	browsertest.Do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#code"), code[1]),
		chromedp.Click(chromedp.CSS("#verify")),
		chromedp.WaitVisible(chromedp.CSS("#preferences-link")),
		chromedp.Click(chromedp.CSS("#preferences-link")),
		chromedp.WaitVisible(chromedp.CSS("#preferences-form")),
	)
	if got := refused(t, ctx); !got["marketing"] || got["profiling"] || got["sale_share"] {
		t.Errorf("after the opt-out of marketing, the preferences refuse %v", got)
	}
	checkPage(t, ctx, "portal-preferences")

	// Marketing allowed again, profiling stopped: saved and kept.
	browsertest.SetViewport(t, ctx, browsertest.Desktop)
	browsertest.Do(t, ctx,
		chromedp.Click(chromedp.CSS("#refuse-marketing")),
		chromedp.Click(chromedp.CSS("#refuse-profiling")),
		chromedp.Click(chromedp.CSS("#save-preferences")),
		chromedp.WaitVisible(chromedp.CSS("#flash")),
	)
	if loc := browsertest.Run(t, ctx, chromedp.Location()); !strings.Contains(loc, "done=saved") {
		t.Errorf("after saving, the tab is at %s", loc)
	}
	prefs := strings.TrimSuffix(browsertest.Run(t, ctx, chromedp.Location()), "?done=saved")
	browsertest.Do(t, ctx, chromedp.Navigate(prefs), chromedp.WaitVisible(chromedp.CSS("#preferences-form")))
	if got := refused(t, ctx); got["marketing"] || !got["profiling"] || got["sale_share"] {
		t.Errorf("after saving, the preferences refuse %v, want profiling only", got)
	}

	// The consent history: the opt-out, the opt-in, and the new opt-out
	// once its fan-out has run.
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS("#history-link")), chromedp.WaitVisible(chromedp.CSS("h1")))
	want := [][2]string{
		{en["portal.consent.kind.opt_out"], en["portal.scope.marketing"]},
		{en["portal.consent.kind.opt_in"], en["portal.scope.marketing"]},
		{en["portal.consent.kind.opt_out"], en["portal.scope.profiling"]},
	}
	var rows [][]string
	for deadline := time.Now().Add(time.Minute); ; {
		rows = browsertest.Run(t, ctx, chromedp.Evaluate[[][]string](
			`[...document.querySelectorAll("#history tbody tr")].map(tr => [...tr.cells].map(td => td.textContent.trim()))`))
		if hasRows(rows, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute, the consent history reads %q, want rows %q", rows, want)
		}
		browsertest.Do(t, ctx, chromedp.Sleep(300*time.Millisecond), chromedp.Reload(), chromedp.WaitReady(chromedp.CSS("main")))
	}
	t.Logf("consent history: %q", rows)
	checkPage(t, ctx, "portal-consent-history")
}

// hasRows reports whether every (what, uses) of want is a row of the
// consent history (cells: when, what, uses, how).
func hasRows(rows [][]string, want [][2]string) bool {
	for _, w := range want {
		if !slices.ContainsFunc(rows, func(r []string) bool { return len(r) == 4 && r[1] == w[0] && r[2] == w[1] }) {
			return false
		}
	}
	return true
}

// identityProvider is an OpenID Connect provider for a test
// (oauth2-proxy/mockoidc) at http://localhost:<port>: another site than
// the service at 127.0.0.1, as a real provider is. Its authorisation
// endpoint first shows a page whose link signs in, so the browser comes
// back to the service from a navigation the provider's page started, as
// after a real sign-in form. /hop?to=<url> is a page of the provider's
// site linking to url.
type identityProvider struct {
	*mockoidc.MockOIDC
	base string
}

func startIdentityProvider(t *testing.T) *identityProvider {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := func(w http.ResponseWriter, id, href, text string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Provider</title></head><body><main><a id=%q href="%s">%s</a></main></body></html>`,
			id, html.EscapeString(href), html.EscapeString(text))
	}
	mux := http.NewServeMux()
	mux.HandleFunc(mockoidc.DiscoveryEndpoint, m.Discovery)
	mux.HandleFunc(mockoidc.JWKSEndpoint, m.JWKS)
	mux.HandleFunc(mockoidc.TokenEndpoint, m.Token)
	mux.HandleFunc(mockoidc.UserinfoEndpoint, m.Userinfo)
	mux.HandleFunc(mockoidc.AuthorizationEndpoint, func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); q.Get("signed_in") == "" {
			q.Set("signed_in", "1")
			page(w, "provider-sign-in", r.URL.Path+"?"+q.Encode(), "Sign in")
			return
		}
		m.Authorize(w, r)
	})
	mux.HandleFunc("/hop", func(w http.ResponseWriter, r *http.Request) { page(w, "hop", r.URL.Query().Get("to"), "Go") })
	// mockoidc names its issuer after Server.Addr; Serve does not read it.
	m.Server = &http.Server{Addr: fmt.Sprintf("localhost:%d", ln.Addr().(*net.TCPAddr).Port), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = m.Server.Serve(ln) }()
	t.Cleanup(func() { _ = m.Shutdown() })
	return &identityProvider{MockOIDC: m, base: m.Addr()}
}

// TestBrowserConsoleOIDC is an agent signing in to the console with
// OpenID Connect: the sign-in page's link goes to the provider, whose page
// sends the browser back to the callback, which answers 200 with Refresh:
// 0 (a redirect, part of the navigation from the provider's site, would
// not carry the SameSite=Strict session cookie); the browser goes on to
// the queue signed in. The provider's site linking to the console shows
// the browser does withhold that cookie from a cross-site navigation.
func TestBrowserConsoleOIDC(t *testing.T) {
	b := browsertest.Start(t)
	idp := startIdentityProvider(t)
	idp.QueueUser(&mockoidc.MockUser{Subject: "u-4242", Email: "agent@example.com", Groups: []string{"staff", "privacy-team"}})
	r := testenv.RedisServer(t)
	// In dev, DSAR_PUBLIC_URL (the callback's base) is the address dsar
	// listens on, the one the browser uses.
	env := append(baseEnv(t, t.TempDir(), r.Addr, testenv.Queue(t, r), testenv.Name("e2e")),
		"DSAR_OIDC_ISSUER="+idp.Issuer(), "DSAR_OIDC_CLIENT_ID="+idp.ClientID, "DSAR_OIDC_CLIENT_SECRET="+idp.ClientSecret,
		"DSAR_OIDC_ROLES=admin=privacy-admins,agent=privacy-team")
	p := startDSAR(t, env, "dev", "--demo")

	ctx := b.NewTab(t, browsertest.TabOptions{})
	var (
		mu       sync.Mutex
		callback *network.Response
	)
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventResponseReceived); ok && e.Type == network.ResourceTypeDocument && strings.Contains(e.Response.URL, "/console/oidc/callback") {
			mu.Lock()
			callback = e.Response
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}

	browsertest.Do(t, ctx, chromedp.Navigate(p.base+"/console"), chromedp.WaitVisible(chromedp.CSS("#oidc")))
	checkPage(t, ctx, "console-sign-in-oidc")
	browsertest.SetViewport(t, ctx, browsertest.Desktop)
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS("#oidc")), chromedp.WaitVisible(chromedp.CSS("#provider-sign-in")))
	if loc := browsertest.Run(t, ctx, chromedp.Location()); !strings.HasPrefix(loc, idp.base+mockoidc.AuthorizationEndpoint+"?") {
		t.Fatalf("the OIDC link led to %s, not the provider", loc)
	}
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS("#provider-sign-in")), chromedp.WaitVisible(chromedp.CSS("#signed-in-as, #sign-in")))
	if loc := browsertest.Run(t, ctx, chromedp.Location()); loc != p.base+"/console" || exists(t, ctx, "#sign-in") {
		t.Fatalf("back from the provider, the tab is at %s, not the queue signed in (did the session cookie come along?)", loc)
	}
	if who := browsertest.Run(t, ctx, chromedp.TextContent(chromedp.CSS("#signed-in-as"))); !strings.Contains(who, "oidc:u-4242") {
		t.Errorf("signed in as %q, want oidc:u-4242", who)
	}
	mu.Lock()
	cb := callback
	mu.Unlock()
	if cb == nil {
		t.Fatal("the browser saw no answer of the callback")
	}
	if refresh, _ := cb.Headers["Refresh"].(string); cb.Status != http.StatusOK || refresh != "0; url=/console" {
		t.Errorf("the callback answered %d with Refresh %q, want 200 and 0; url=/console", cb.Status, refresh)
	}
	checkPage(t, ctx, "console-queue-oidc")

	// A link from the provider's site to the console: no session cookie
	// goes with it, so the sign-in page; typed in, the console is there.
	browsertest.Do(t, ctx,
		chromedp.Navigate(idp.base+"/hop?to="+url.QueryEscape(p.base+"/console")),
		chromedp.Click(chromedp.CSS("#hop")),
		chromedp.WaitVisible(chromedp.CSS("#sign-in")),
		chromedp.Navigate(p.base+"/console"),
		chromedp.WaitVisible(chromedp.CSS("#signed-in-as")),
	)
}
