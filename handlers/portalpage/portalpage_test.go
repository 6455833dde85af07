package portalpage_test

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/handlers/portalpage"
	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
	"github.com/dsar-project/dsar/workers"
)

type nopQueue struct{}

func (nopQueue) EnqueueFanout(context.Context, string) error              { return nil }
func (nopQueue) EnqueueFanoutAt(context.Context, string, time.Time) error { return nil }
func (nopQueue) EnqueueJob(context.Context, string) error                 { return nil }
func (nopQueue) EnqueueNotice(context.Context, string, string) error      { return nil }

// portal is the pages over a real application and store, served by a real
// HTTP server.
type portal struct {
	t     *testing.T
	url   string
	app   *app.Service
	store *teststore.Store
	idx   *dsr.BlindIndex
	clock *testenv.Clock
	logs  *testenv.Buffer
	log   *slog.Logger
}

func startPortal(t *testing.T, correct []string) *portal {
	t.Helper()
	return startPortalLimits(t, correct, nil)
}

// startPortalLimits is startPortal with the abuse limits given.
func startPortalLimits(t *testing.T, correct []string, limits *httpkit.Limits) *portal {
	t.Helper()
	gin.SetMode(gin.TestMode)
	clk := testenv.NewClock(time.Now().UTC())
	store := teststore.Open(t, clk.Now)
	key := []byte("0123456789abcdef0123456789abcdef")
	idx, err := dsr.NewBlindIndex(key)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := app.Deps{Store: store, Queue: nopQueue{}, Index: idx, Links: dsr.NewLinkSigner(key), Log: log, Now: clk.Now,
		Portal: app.PortalOptions{MaxTries: 5, MaxPending: 1, LinkTTL: time.Hour, GPCLastUpdate: "2026-01-01"}}
	if correct != nil {
		d.CorrectFields = func() []string { return correct }
	}
	svc := app.New(d)
	kit := webkit.New(webkit.Options{Secrets: [][]byte{key}, Brand: webkit.Brand{Name: "Example Shop", PolicyURL: "/policy"}, Log: log})
	r := gin.New()
	kit.RegisterAssets(r)
	portalpage.Register(r, portalpage.Deps{App: svc, Kit: kit, Limits: limits, Log: log})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &portal{t: t, url: srv.URL, app: svc, store: store, idx: idx, clock: clk, logs: logs, log: log}
}

// browser is one browser: its cookies, and the CSRF token of the last page.
type browser struct {
	p    *portal
	http *http.Client
	csrf string
	// pages collects every HTML page rendered, for the markup checks.
	pages *[]string
}

func (p *portal) browser() *browser {
	jar, _ := cookiejar.New(nil)
	var pages []string
	return &browser{p: p, pages: &pages, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfIn = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(method, path string, body io.Reader, header ...string) (*http.Response, string) {
	b.p.t.Helper()
	req, err := http.NewRequest(method, b.p.url+path, body)
	if err != nil {
		b.p.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.http.Do(req)
	if err != nil {
		b.p.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	page := string(data)
	if m := csrfIn.FindStringSubmatch(page); m != nil {
		b.csrf = m[1]
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		*b.pages = append(*b.pages, page)
	}
	return resp, page
}

func (b *browser) get(path string, header ...string) (*http.Response, string) {
	return b.do(http.MethodGet, path, nil, header...)
}

// post sends a form with the browser's CSRF token (unless v has one).
func (b *browser) post(path string, v url.Values, header ...string) (*http.Response, string) {
	if _, ok := v["csrf"]; !ok {
		v.Set("csrf", b.csrf)
	}
	return b.do(http.MethodPost, path, strings.NewReader(v.Encode()), header...)
}

var idIn = regexp.MustCompile(`^/privacy/requests/([0-9a-f-]{36})\?done=submitted$`)

// submit files a request through the form and returns its id.
func (b *browser) submit(v url.Values, header ...string) string {
	b.p.t.Helper()
	b.get("/privacy")
	resp, page := b.post("/privacy/requests", v, header...)
	m := idIn.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		b.p.t.Fatalf("submit: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	return m[1]
}

func (b *browser) cookie() *http.Cookie {
	u, _ := url.Parse(b.p.url + "/privacy/")
	for _, c := range b.http.Jar.Cookies(u) {
		if c.Name == portalpage.CookieName {
			return c
		}
	}
	return nil
}

// issueCode stands for the worker that emails the code: it sets a known
// one (and a link token).
func (p *portal) issueCode(id, code, link string) {
	p.t.Helper()
	if err := p.store.IssueVerification(context.Background(), id, p.idx.HashCode(id, code), dsr.HashToken(link), p.clock.Now().Add(15*time.Minute)); err != nil {
		p.t.Fatal(err)
	}
}

// fanout runs the workers' fan-out of request id, as the queue would once
// it is verified (no connector here: it acts on nothing).
func (p *portal) fanout(id string) {
	p.t.Helper()
	h := workers.NewFanoutHandler(workers.FanoutDeps{Store: p.store, Connectors: connectors.NewRegistry(), Queue: nopQueue{}, Index: p.idx, Log: p.log},
		workers.FanoutOptions{MaxRetry: 1, Now: p.clock.Now})
	if err := h.Fanout(context.Background(), id); err != nil {
		p.t.Fatal(err)
	}
}

func (p *portal) request(id string) *dsr.Request {
	p.t.Helper()
	r, err := p.store.Request(context.Background(), id)
	if err != nil {
		p.t.Fatal(err)
	}
	return r
}

func (p *portal) count() int {
	p.t.Helper()
	page, err := p.app.List(context.Background(), dsr.ListFilter{Limit: 100})
	if err != nil {
		p.t.Fatal(err)
	}
	return len(page.Requests)
}

func access(email string) url.Values {
	return url.Values{"type": {"access"}, "regulation": {"gdpr"}, "email": {email}}
}

func contains(t *testing.T, page string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks %q:\n%s", w, page)
		}
	}
}

func lacks(t *testing.T, page string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(page, w) {
			t.Errorf("page has %q", w)
		}
	}
}

func TestCatalogues(t *testing.T) {
	kit := webkit.New(webkit.Options{Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}})
	pages := portalpage.Parse(kit)
	if m := pages.Missing(); len(m) > 0 {
		t.Fatalf("catalogues incomplete:\n%s", strings.Join(m, "\n"))
	}
	keys := pages.Keys()
	// Every key a template or the Go code names literally exists in English.
	lit := regexp.MustCompile(`"((?:portal|common)\.[a-z_.]+[a-z_])"`)
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".html") || strings.HasSuffix(path, ".go")) || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
			if k := m[1]; !keys[k] && !strings.HasSuffix(k, ".") {
				t.Errorf("%s: message %q not in en.json", path, k)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Keys made from values: every status, type, regulation, scope,
	// consent kind and source.
	var made []string
	for _, s := range []dsr.Status{dsr.StatusReceived, dsr.StatusVerifying, dsr.StatusVerified, dsr.StatusAwaitingApproval, dsr.StatusInProgress,
		dsr.StatusCompleted, dsr.StatusNeedsAttention, dsr.StatusDenied, dsr.StatusCancelled, dsr.StatusExpired, dsr.StatusDuplicate} {
		made = append(made, "portal.state."+string(s), "portal.state."+string(s)+".help")
	}
	for _, ty := range []dsr.Type{dsr.TypeAccess, dsr.TypeDeletion, dsr.TypeOptOut, dsr.TypeCorrection} {
		made = append(made, "portal.type."+string(ty), "portal.type."+string(ty)+".hint")
	}
	for _, r := range dsr.Regulations {
		made = append(made, "portal.regulation."+string(r))
	}
	for _, s := range dsr.Scopes {
		made = append(made, "portal.scope."+string(s))
	}
	for _, s := range dsr.Purposes {
		made = append(made, "portal.prefs.refuse."+string(s))
	}
	for _, k := range []dsr.ConsentKind{dsr.ConsentOptOut, dsr.ConsentOptIn, dsr.ConsentGPCSeen, dsr.ConsentDeletion, dsr.ConsentLifted, dsr.ConsentImported} {
		made = append(made, "portal.consent.kind."+string(k))
	}
	for _, s := range []dsr.ConsentSource{dsr.ConsentPortal, dsr.ConsentAgent, dsr.ConsentGPC, dsr.ConsentProtocol, dsr.ConsentAPI, dsr.ConsentImport, dsr.ConsentAdmin} {
		made = append(made, "portal.consent.source."+string(s))
	}
	for _, f := range []string{"type", "regulation", "email", "phone", "customer_id", "advertising_id", "device_id", "scope", "agent_name", "agent_email", "agent_permission", "code", "refuse",
		"corrections", "correction_field", "correction_value"} {
		made = append(made, "portal.err."+f)
	}
	for d := range map[string]bool{"submitted": true, "verified": true, "merged": true, "resent": true, "opened": true} {
		made = append(made, "portal.status.done."+d)
	}
	made = append(made, "portal.preferences.done.saved")
	for _, k := range made {
		if !keys[k] {
			t.Errorf("message %q not in en.json", k)
		}
	}
}
