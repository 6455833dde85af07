package webkit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/apikey"
)

//go:embed templates messages assets
var files embed.FS

// Options configure a Kit. Secrets is required.
type Options struct {
	Brand Brand
	// Secrets are the service's keys, the current first (the blind
	// index's: dsr.BlindIndex.Keys); the kit derives its CSRF keys from
	// them, signs under the first and accepts the others' tokens.
	Secrets [][]byte
	Log     *slog.Logger
}

// Kit is the toolkit the pages share. It is safe for concurrent use.
type Kit struct {
	brand Brand
	// csrfKeys sign form tokens (the first) and check them (all).
	csrfKeys [][]byte
	log      *slog.Logger
	common   catalog
	// bare are pages with only the error page, for addresses no surface
	// routes: by section.
	bare map[string]*Pages
}

// New returns a Kit.
func New(o Options) *Kit {
	if len(o.Secrets) == 0 {
		panic("webkit: no secret") // a programming error: main wires one
	}
	k := &Kit{brand: o.Brand, log: o.Log, common: catalog{}}
	for _, s := range o.Secrets {
		m := hmac.New(sha256.New, s)
		m.Write([]byte("dsar page forms v1"))
		k.csrfKeys = append(k.csrfKeys, m.Sum(nil))
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if err := loadMessages(k.common, files, "messages"); err != nil {
		panic(err) // embedded: a test loads them
	}
	k.bare = map[string]*Pages{"privacy": k.Parse(embed.FS{}, "privacy", "/privacy"), "console": k.Parse(embed.FS{}, "console", "/console")}
	return k
}

// Brand returns the brand the kit presents.
func (k *Kit) Brand() Brand { return k.brand }

// Pages is one surface's set of pages, each its own template over the
// shared layout, with the surface's messages and the kit's.
type Pages struct {
	kit     *Kit
	section string
	home    string
	pages   map[string]*template.Template
	layout  *template.Template
	cat     catalog
}

// Parse returns the pages of a surface: every templates/*.html of fsys
// (each defining the blocks "title" and "content"), over the kit's layout,
// with the messages of fsys's messages/<code>.json added to the kit's.
// Embed the partials by pattern (//go:embed templates/*.html messages):
// go:embed leaves out a directory's files whose names start with "_".
// Section names the surface ("privacy", "console") for its stylesheet and
// script (/assets/<section>.css, .js); home is its root path. It panics on a
// template or catalogue that does not parse: they are embedded, and a test
// parses them.
func (k *Kit) Parse(fsys fs.FS, section, home string) *Pages {
	p, err := k.parse(fsys, section, home)
	if err != nil {
		panic(err)
	}
	return p
}

func (k *Kit) parse(fsys fs.FS, section, home string) (*Pages, error) {
	cat := catalog{}
	for lang, m := range k.common {
		cat[lang] = map[string]string{}
		for key, v := range m {
			cat[lang][key] = v
		}
	}
	if err := loadMessages(cat, fsys, "messages"); err != nil {
		return nil, fmt.Errorf("%s: %w", section, err)
	}
	layout, err := template.New("layout.html").ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(fsys, "templates/*.html")
	if err != nil {
		return nil, err
	}
	// Partials (templates/_*.html) are in every page of the surface: a
	// page defines "title" and "content", a partial may define "nav".
	var partials, pages []string
	for _, n := range names {
		if strings.HasPrefix(path.Base(n), "_") {
			partials = append(partials, n)
		} else {
			pages = append(pages, n)
		}
	}
	if len(partials) > 0 {
		if layout, err = layout.ParseFS(fsys, partials...); err != nil {
			return nil, err
		}
	}
	p := &Pages{kit: k, section: section, home: home, pages: map[string]*template.Template{}, layout: layout, cat: cat}
	for _, n := range pages {
		t, err := template.Must(layout.Clone()).ParseFS(fsys, n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		p.pages[strings.TrimSuffix(path.Base(n), ".html")] = t
	}
	if err := p.kit.errorPages(p); err != nil {
		return nil, err
	}
	return p, nil
}

// errorPages adds the kit's error page to p, unless p has its own.
func (k *Kit) errorPages(p *Pages) error {
	if _, ok := p.pages["error"]; ok {
		return nil
	}
	t, err := template.Must(p.layout.Clone()).ParseFS(files, "templates/error/error.html")
	if err != nil {
		return err
	}
	p.pages["error"] = t
	return nil
}

// Page is what every template renders: the page's own Data and what the
// layout needs. Templates translate with {{.T "key"}} ({{$.T "key"}} inside
// range and with).
type Page struct {
	Lang    string
	Langs   []LangLink
	Brand   Brand
	Section string
	Home    string
	// CSRF is the token the page's forms send as the field "csrf".
	CSRF string
	// Principal is the signed-in agent on the console; zero elsewhere.
	Principal apikey.Principal
	// Data is the page's own.
	Data any
	now  time.Time
	cat  catalog
}

// T returns the message key in the page's language, formatted with args.
func (p Page) T(key string, args ...any) string { return p.cat.text(p.Lang, key, args...) }

// Date renders t as a date in the page's language ("2 March 2026").
func (p Page) Date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.UTC()
	return fmt.Sprintf("%d %s %d", t.Day(), p.T(fmt.Sprintf("common.month.%d", int(t.Month()))), t.Year())
}

// DateTime renders t as a date and a UTC time ("2 March 2026, 14:05 UTC").
func (p Page) DateTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return p.Date(t) + ", " + t.UTC().Format("15:04") + " UTC"
}

// Now is the time the page was rendered.
func (p Page) Now() time.Time { return p.now }

// Render writes page name with data as the response, with status. The page
// is rendered whole before anything is sent: a template that fails sends a
// plain 500 and a log line, never half a page.
func (p *Pages) Render(c *gin.Context, status int, name string, data any) {
	t, ok := p.pages[name]
	if !ok {
		p.kit.log.ErrorContext(c.Request.Context(), "page not found", "page", name)
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	lang := Lang(c)
	pg := Page{Lang: lang, Langs: langLinks(c, lang), Brand: p.kit.brand, Section: p.section, Home: p.home,
		CSRF: p.kit.CSRF(c), Principal: httpkit.PrincipalOf(c), Data: data, now: time.Now(), cat: p.cat}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", pg); err != nil {
		p.kit.log.ErrorContext(c.Request.Context(), "page failed to render", "page", name, "error", err)
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	c.Header("Content-Language", lang)
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// NotFound renders the 404 page of the section the path belongs to (the
// console's under /console, else the portal's), for addresses that no page
// routes.
func (k *Kit) NotFound(c *gin.Context) {
	section := "privacy"
	if c.Request.URL.Path == "/console" || strings.HasPrefix(c.Request.URL.Path, "/console/") {
		section = "console"
	}
	k.Headers()(c)
	k.bare[section].Error(c, http.StatusNotFound, "common.notfound.title", "common.notfound.message")
}

// MethodNotAllowed renders the 405 page of the section the path belongs
// to, with the pages' security headers, for a method no page of the
// address takes (the router sets Allow).
func (k *Kit) MethodNotAllowed(c *gin.Context) {
	section := "privacy"
	if c.Request.URL.Path == "/console" || strings.HasPrefix(c.Request.URL.Path, "/console/") {
		section = "console"
	}
	k.Headers()(c)
	k.bare[section].Error(c, http.StatusMethodNotAllowed, "common.notallowed.title", "common.notallowed.message")
}

// ErrorData is what the error page shows: a translated title and message
// (message keys) and where to go next.
type ErrorData struct {
	Title, Message string
	// Back is a link to go on from ("" : the surface's home).
	Back string
}

// Error renders the error page with status and aborts the chain. title and
// message are message keys.
func (p *Pages) Error(c *gin.Context, status int, title, message string) {
	p.Render(c, status, "error", ErrorData{Title: title, Message: message})
	c.Abort()
}

// T translates key for the exchange's language, for text set outside a
// template (a redirect's flash, say).
func (p *Pages) T(c *gin.Context, key string, args ...any) string {
	return p.cat.text(Lang(c), key, args...)
}

// Keys returns every message key of p's catalogue in English, for tests.
func (p *Pages) Keys() map[string]bool {
	out := map[string]bool{}
	for k := range p.cat[Languages[0].Code] {
		out[k] = true
	}
	return out
}

// Missing lists what the catalogues lack, for tests: empty when every
// language has every key.
func (p *Pages) Missing() []string { return p.cat.missing() }

// SecureCookies reports whether cookies set on the exchange are Secure:
// always, but where the service is reached on a loopback address
// (development), over plain HTTP.
func SecureCookies(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	return !(loopbackHost(host) && r.TLS == nil)
}

func loopbackHost(h string) bool {
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}
