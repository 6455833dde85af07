package webkit

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gin-gonic/gin"
)

func testKit(t *testing.T) (*Kit, *Pages, *gin.Engine) {
	t.Helper()
	gin.SetMode(gin.TestMode)
	k := New(Options{Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, Brand: Brand{Name: "Example Shop", Color: "#ffcc00"}})
	fsys := fstest.MapFS{
		"templates/hello.html": {Data: []byte(`{{define "title"}}{{.T "t.hello"}}{{end}}{{define "content"}}<h1>{{.T "t.hello"}}</h1><form method="post"><input type="hidden" name="csrf" value="{{.CSRF}}"></form>{{end}}`)},
		"messages/en.json":     {Data: []byte(`{"t.hello":"Hello"}`)},
		"messages/fr.json":     {Data: []byte(`{"t.hello":"Bonjour"}`)},
	}
	p := k.Parse(fsys, "privacy", "/privacy")
	r := gin.New()
	r.Use(k.Headers())
	k.RegisterAssets(r)
	r.GET("/hello", func(c *gin.Context) { p.Render(c, http.StatusOK, "hello", nil) })
	r.POST("/hello", p.CheckCSRF(), func(c *gin.Context) { c.String(http.StatusOK, "done") })
	return k, p, r
}

func TestCataloguesComplete(t *testing.T) {
	_, p, _ := testKit(t)
	if m := p.Missing(); len(m) > 0 {
		t.Fatalf("catalogues incomplete:\n%s", strings.Join(m, "\n"))
	}
}

func TestLanguageChoice(t *testing.T) {
	_, _, r := testKit(t)
	for _, tc := range []struct{ name, query, accept, cookie, want string }{
		{"default", "", "", "", "Hello"},
		{"accept-language", "", "fr-CA,fr;q=0.9,en;q=0.5", "", "Bonjour"},
		{"unknown language", "", "ja", "", "Hello"},
		{"switch wins", "?lang=en", "fr", "", "Hello"},
		{"cookie", "", "en", "fr", "Bonjour"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/hello"+tc.query, nil)
			req.Header.Set("Accept-Language", tc.accept)
			if tc.cookie != "" {
				req.AddCookie(&http.Cookie{Name: LangCookie, Value: tc.cookie})
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if !strings.Contains(w.Body.String(), "<h1>"+tc.want+"</h1>") {
				t.Fatalf("want %q in:\n%s", tc.want, w.Body.String())
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	_, _, r := testKit(t)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/hello", nil))
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP allows inline: %q", csp)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q", got)
	}
	if got := w.Header().Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options = %q", got)
	}
}

func TestCSRF(t *testing.T) {
	_, _, r := testKit(t)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/hello", nil))
	var cookie *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == CSRFCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("csrf cookie = %+v", cookie)
	}
	body := w.Body.String()
	i := strings.Index(body, `name="csrf" value="`)
	token := body[i+len(`name="csrf" value="`):]
	token = token[:strings.IndexByte(token, '"')]

	post := func(token string, cookie *http.Cookie, hdr map[string]string) int {
		req := httptest.NewRequest(http.MethodPost, "/hello", strings.NewReader(url.Values{"csrf": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w.Code
	}
	other := &http.Cookie{Name: CSRFCookie, Value: strings.Repeat("A", 43)}
	for _, tc := range []struct {
		name   string
		token  string
		cookie *http.Cookie
		hdr    map[string]string
		want   int
	}{
		{"same site", token, cookie, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://example.com"}, http.StatusOK},
		{"no token", "", cookie, nil, http.StatusForbidden},
		{"no cookie", token, nil, nil, http.StatusForbidden},
		{"another browser's cookie", token, other, nil, http.StatusForbidden},
		{"cross site", token, cookie, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"foreign origin", token, cookie, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := post(tc.token, tc.cookie, tc.hdr); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
}

func TestBrand(t *testing.T) {
	for _, tc := range []struct {
		brand   Brand
		wantErr bool
		css     string
	}{
		{Brand{}, false, "--brand:#1d4ed8;--brand-text:#ffffff;--link:#1d4ed8"},
		{Brand{Color: "#ffcc00"}, false, "--brand-text:#000000"},
		{Brand{Color: "red"}, true, ""},
		{Brand{LogoURL: "http://evil.example/logo.png"}, true, ""},
		{Brand{LogoURL: "https://cdn.example/logo.png", PolicyURL: "/privacy-policy"}, false, ""},
		{Brand{PolicyURL: "javascript:alert(1)"}, true, ""},
		{Brand{PolicyURL: "//evil.example"}, true, ""},
	} {
		err := tc.brand.Validate()
		if (err != nil) != tc.wantErr {
			t.Errorf("%+v: err %v", tc.brand, err)
		}
		if tc.css != "" && !strings.Contains(tc.brand.CSS(), tc.css) {
			t.Errorf("%+v: css %q lacks %q", tc.brand, tc.brand.CSS(), tc.css)
		}
	}
	// A light colour's links are darkened to AA contrast on white.
	r, g, b := parseHex("#" + strings.SplitN(strings.SplitN(Brand{Color: "#ffcc00"}.CSS(), "--link:#", 2)[1], "}", 2)[0])
	if c := contrast(r, g, b, 255, 255, 255); c < 4.5 {
		t.Fatalf("link contrast %.2f", c)
	}
}

func TestAssets(t *testing.T) {
	_, _, r := testKit(t)
	for path, want := range map[string]int{"/assets/base.css": 200, "/assets/brand.css": 200, "/assets/privacy.js": 200, "/assets/nope.css": 404, "/assets/": 404, "/assets/../kit.go": 404} {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
}

// TestCSRFKeyChange: a form served before the key changed is still
// accepted while the old key is given, and only then.
func TestCSRFKeyChange(t *testing.T) {
	oldKey, newKey := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	before := New(Options{Secrets: [][]byte{oldKey}})
	during := New(Options{Secrets: [][]byte{newKey, oldKey}})
	after := New(Options{Secrets: [][]byte{newKey}})
	cookie := strings.Repeat("c", 43)
	served := before.token(before.csrfKeys[0], cookie, "req-1")
	if !during.tokenValid(served, cookie, "req-1") {
		t.Error("a form served under the old key is refused while the old key is given")
	}
	if after.tokenValid(served, cookie, "req-1") || during.tokenValid(served, cookie, "req-2") {
		t.Error("a form served under the old key is accepted without it, or for another binding")
	}
	if during.token(during.csrfKeys[0], cookie, "req-1") != after.token(after.csrfKeys[0], cookie, "req-1") {
		t.Error("forms are not signed under the current key")
	}
}
