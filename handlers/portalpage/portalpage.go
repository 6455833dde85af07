// Package portalpage is the privacy portal's pages under /privacy: a person
// chooses a right, proves who they are with the emailed code or link,
// follows the request, downloads their data and manages their choices. The
// pages are rendered on the server and work without JavaScript
// (/assets/privacy.js only enhances them). They call the same application
// methods as the portal's JSON API (package portalapi); a request is opened
// with the status token the portal's cookie keeps for it, which never
// appears in a URL or a log.
package portalpage

import (
	"context"
	"embed"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/handlers/webkit"
)

//go:embed templates templates/_*.html messages
var files embed.FS

// Home is the portal's root path.
const Home = "/privacy"

// MaxBodyBytes is the largest form the portal accepts (64 KiB).
const MaxBodyBytes = 64 << 10

// Deps is what the portal's pages need. App, Kit and Log are required;
// Limits nil means no abuse limits.
type Deps struct {
	App    *app.Service
	Kit    *webkit.Kit
	Limits *httpkit.Limits
	Log    *slog.Logger
}

// handler serves the pages.
type handler struct {
	app    *app.Service
	pages  *webkit.Pages
	limits *httpkit.Limits
	log    *slog.Logger
	// keys are the catalogues' keys (a field's label, when it has one).
	keys map[string]bool
}

// Parse returns the portal's pages over kit (for tests of the catalogues).
func Parse(kit *webkit.Kit) *webkit.Pages { return kit.Parse(files, "privacy", Home) }

// Register adds the portal's pages to r, under the kit's security headers;
// forms are posted under the limit per client address and the CSRF check.
func Register(r *gin.Engine, d Deps) {
	h := &handler{app: d.App, pages: Parse(d.Kit), limits: d.Limits, log: d.Log}
	h.keys = h.pages.Keys()
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	g := r.Group(Home, d.Kit.Headers())
	g.GET("", h.home)
	g.GET("/verify", h.verifyLanding)
	g.GET("/check", h.checkForm)
	g.GET("/requests", h.back)
	g.GET("/requests/:id", h.status)
	g.GET("/requests/:id/verify", h.back)
	g.GET("/requests/:id/resend", h.back)
	g.GET("/requests/:id/download", h.download)
	g.GET("/requests/:id/preferences", h.preferences)
	g.GET("/requests/:id/consent-history", h.history)

	post := g.Group("", h.limitBody, h.perIP, h.pages.CheckCSRF())
	post.POST("/requests", h.submit)
	post.POST("/requests/:id/verify", h.verify)
	post.POST("/requests/:id/resend", h.resend)
	post.POST("/requests/:id/preferences", h.setPreferences)
	post.POST("/check", h.check)
}

// limitBody refuses a form larger than MaxBodyBytes with 413 and reads no
// more than that of one whose length is not told.
func (h *handler) limitBody(c *gin.Context) {
	if c.Request.ContentLength > MaxBodyBytes {
		h.pages.Error(c, http.StatusRequestEntityTooLarge, "portal.toolarge.title", "portal.toolarge.message")
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes)
	c.Next()
}

// perIP counts a form against the client address's limit; over it, the
// person gets a page saying to wait (429, Retry-After), not the API's
// problem JSON.
func (h *handler) perIP(c *gin.Context) {
	if err := h.limits.CheckIP(c); err != nil {
		p := h.problemOf(c, err, "")
		h.pages.Render(c, p.Status, "failed", errorPage(p))
		c.Abort()
		return
	}
	c.Next()
}

// back answers a GET of a path only forms post to (the language switch of
// a page rendered by a POST links there): the request's page, or the home.
func (h *handler) back(c *gin.Context) {
	webkit.Lang(c) // keeps a ?lang= switch
	to := Home
	if id := c.Param("id"); dsr.ValidID(id) {
		to = statusPath(id)
	}
	c.Redirect(http.StatusSeeOther, to)
}

// statusPath is the page of request id (a valid id: callers check it).
func statusPath(id string) string { return Home + "/requests/" + id }

// gpcSignal reports whether the browser sends a Global Privacy Control
// signal: the Sec-GPC: 1 header, or the form's gpc field that privacy.js
// sets from navigator.globalPrivacyControl.
func gpcSignal(c *gin.Context) bool {
	return c.GetHeader("Sec-GPC") == "1" || (c.Request.Method == http.MethodPost && c.PostForm("gpc") == "1")
}

// open opens request :id with the status token the cookie holds for it,
// or else with token (a reference the person typed). It fails as for an
// unknown id whatever is wrong.
func (h *handler) open(c *gin.Context, token string) (app.Access, error) {
	id := c.Param("id")
	if t := tokenFor(c, id); t != "" {
		token = t
	}
	if !validToken(token) {
		return app.Access{}, dsr.ErrNotFound
	}
	return h.app.Open(c.Request.Context(), id, token)
}

// arrival is what the exchange says of a filing: its GPC signal, and the
// limit per identity.
func (h *handler) arrival(c *gin.Context) app.Arrival {
	return app.Arrival{
		GPC:   gpcSignal(c),
		Limit: func(_ context.Context, key string) error { return h.limits.PerIdentity(c, key) },
	}
}

// flashes are the messages a redirect may ask a page to show (?done=).
var flashes = map[string]bool{"submitted": true, "verified": true, "merged": true, "resent": true, "saved": true, "opened": true}

// flash returns the message key of the page's ?done=, or "".
func flash(c *gin.Context, page string) string {
	if d := c.Query("done"); flashes[d] {
		return "portal." + page + ".done." + d
	}
	return ""
}

// trimmed returns the form field name, trimmed.
func trimmed(c *gin.Context, name string) string { return strings.TrimSpace(c.PostForm(name)) }
