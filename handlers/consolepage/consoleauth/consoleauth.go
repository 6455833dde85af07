// Package consoleauth is the agent console's sign-in: with an API key of
// the agent, admin or auditor role, or with OpenID Connect when configured;
// sessions kept in Redis, ended by sign-out, idleness or age; the session
// cookie HttpOnly, SameSite=Strict and Secure outside loopback.
//
// A session is a random id in the browser's cookie and, in Redis, under the
// id's SHA-256, who signed in, how and when. Every use refreshes its idle
// timeout; it ends at MaxAge after sign-in whatever its use; an API key's
// session ends as soon as the keyring no longer holds that key with that
// role. Every sign-in makes a new id, so an id planted in a browser before
// it signs in is worth nothing after. The pipeline role has no console.
package consoleauth

import (
	"context"
	"embed"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
)

//go:embed templates messages
var files embed.FS

// The console's sign-in routes. A page's sign-out is a form that POSTs to
// SignOutPath with the page's CSRF token.
const (
	SignInPath    = "/console/sign-in"
	SignOutPath   = "/console/sign-out"
	OIDCStartPath = "/console/oidc/start"
	// OIDCCallbackPath is the redirect URL to register with the provider,
	// after the service's public URL.
	OIDCCallbackPath = "/console/oidc/callback"
)

// Defaults of Options.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxAge      = 12 * time.Hour
	DefaultPrefix      = "dsar:console:"
)

// maxKeyLen bounds what the key field is worth checking: longer is wrong.
const maxKeyLen = 1024

// OIDCConfig is the OpenID Connect provider agents may sign in with.
type OIDCConfig struct {
	Issuer, ClientID, ClientSecret string
	// RedirectURL is this service's callback: <public URL>/console/oidc/callback.
	RedirectURL string
	// RoleClaim names the ID token's claim holding the groups (or roles)
	// that Roles maps to a console role; "" is "groups". The claim may be
	// a string or a list of strings. When its values map to several roles,
	// the session takes the one that may do the most (admin, then agent,
	// then auditor); when they map to none (or only to the pipeline's,
	// which has no console), the sign-in is refused.
	RoleClaim string
	// Roles maps a value of the role claim to a role.
	Roles map[string]apikey.Role
}

// Options configure the sign-in. Kit, Keys and Redis are required.
type Options struct {
	Kit   *webkit.Kit
	Keys  *apikey.Keyring
	Redis redis.UniversalClient
	// Prefix starts every Redis key of the sessions; "" is DefaultPrefix.
	Prefix string
	// IdleTimeout ends a session left unused that long; 0 is
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxAge ends a session that long after its sign-in, used or not; 0 is
	// DefaultMaxAge.
	MaxAge time.Duration
	// OIDC nil: API keys only.
	OIDC *OIDCConfig
	// Log nil: nothing is logged.
	Log *slog.Logger
	// Now nil: time.Now. Tests set it to move time.
	Now func() time.Time
}

// Auth is the console's sign-in and its sessions. It is safe for
// concurrent use.
type Auth struct {
	o      Options
	pages  *webkit.Pages
	oidc   *provider
	tries  *limiter
	logger *slog.Logger
}

// New returns the sign-in. With OIDC it discovers the provider: one that
// does not answer, or whose discovery document names another issuer, is
// an error.
func New(ctx context.Context, o Options) (*Auth, error) {
	if o.Kit == nil || o.Keys == nil || o.Redis == nil {
		return nil, errors.New("consoleauth: Kit, Keys and Redis are required")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	a := &Auth{o: o, pages: o.Kit.Parse(files, "console", "/console"), tries: &limiter{rdb: o.Redis, prefix: o.Prefix}, logger: o.Log}
	if o.OIDC != nil {
		p, err := discover(ctx, *o.OIDC, o.Now)
		if err != nil {
			return nil, err
		}
		a.oidc = p
	}
	return a, nil
}

func (a *Auth) now() time.Time { return a.o.Now() }

func (a *Auth) log(c *gin.Context) *slog.Logger {
	return a.logger.With("http_request_id", httpkit.RequestIDOf(c))
}

// Register adds the sign-in, sign-out and (when configured) OIDC routes to
// r, under the pages' security headers.
func (a *Auth) Register(r *gin.Engine) {
	g := r.Group("", a.o.Kit.Headers())
	g.GET(SignInPath, a.signInPage)
	g.POST(SignInPath, limitBody, a.signInPost)
	g.POST(SignOutPath, limitBody, a.signOut)
	if a.oidc != nil {
		g.GET(OIDCStartPath, a.oidcStart)
		g.GET(OIDCCallbackPath, a.oidcCallback)
	}
}

// maxForm is the largest sign-in or sign-out form read: a key, a next
// and a token are well under it.
const maxForm = 64 << 10

// limitBody caps what the forms' parsing (the CSRF check's first) reads
// of an exchange that anyone may send: a larger form reads as empty, and
// is refused, rather than held in memory (or spilled to disk) whole.
func limitBody(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxForm)
	c.Next()
}

// Require lets through only exchanges of a signed-in session: it sets the
// session's principal (httpkit.PrincipalOf, and the pages' .Principal),
// binds the pages' CSRF tokens to the session, and refuses an unsafe
// method whose CSRF token is not valid (403 page, nothing done). Without a
// valid session, a GET (or HEAD) is sent to the sign-in page, which comes
// back to it after; any other method gets a 403 page.
func (a *Auth) Require() gin.HandlerFunc {
	return func(c *gin.Context) {
		s, hash, ok, end, err := a.load(c, true)
		if err != nil {
			a.storeFailed(c, err)
			return
		}
		if !ok {
			if hash != "" {
				a.clearCookie(c)
			}
			if end != endNone {
				a.log(c).InfoContext(c.Request.Context(), "console session ended", "reason", end)
			}
			if c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead {
				c.Redirect(http.StatusSeeOther, signInURL(c.Request.URL.RequestURI(), end))
				c.Abort()
				return
			}
			a.pages.Error(c, http.StatusForbidden, "auth.required.title", "auth.required.message")
			return
		}
		httpkit.SetPrincipal(c, s.principal())
		webkit.BindCSRF(c, hash)
		if !a.o.Kit.CSRFValid(c) {
			a.pages.Error(c, http.StatusForbidden, "common.csrf.title", "common.csrf.message")
			return
		}
		c.Next()
	}
}

// signInURL is the sign-in page that comes back to next, saying why the
// session ended.
func signInURL(next, end string) string {
	q := url.Values{}
	if n := safeNext(next); n != home {
		q.Set("next", n)
	}
	if end != endNone {
		q.Set("reason", end)
	}
	if len(q) == 0 {
		return SignInPath
	}
	return SignInPath + "?" + q.Encode()
}

// signInData is what the sign-in page shows.
type signInData struct {
	Next string
	// OIDC: the provider's link is shown.
	OIDC bool
	// Error is the form's error, Notice why the agent is here (both
	// translated already); "" is none.
	Error, Notice string
}

func (a *Auth) form(c *gin.Context, next string) signInData {
	return signInData{Next: safeNext(next), OIDC: a.oidc != nil}
}

// signInPage shows the sign-in form, with why a session ended. It shows
// it to a browser already signed in too: one whose cookie was planted
// must be able to sign in as itself.
func (a *Auth) signInPage(c *gin.Context) {
	d := a.form(c, c.Query("next"))
	switch c.Query("reason") {
	case endIdle:
		d.Notice = a.pages.T(c, "auth.notice.idle", int(math.Max(1, math.Round(a.o.IdleTimeout.Minutes()))))
	case endAge:
		d.Notice = a.pages.T(c, "auth.notice.age", int(math.Max(1, math.Round(a.o.MaxAge.Hours()))))
	case endRevoked:
		d.Notice = a.pages.T(c, "auth.notice.revoked")
	case endSignOut:
		d.Notice = a.pages.T(c, "auth.notice.signout")
	}
	a.pages.Render(c, http.StatusOK, "sign-in", d)
}

// signInPost checks the key and, when it is one with a console, starts a
// session and goes on to next. Tries count against the client address's
// limit, whatever their outcome.
func (a *Auth) signInPost(c *gin.Context) {
	ctx := c.Request.Context()
	if !a.o.Kit.CSRFValid(c) {
		a.pages.Error(c, http.StatusForbidden, "common.csrf.title", "common.csrf.message")
		return
	}
	d := a.form(c, c.PostForm("next"))
	if !a.allow(c, &d) {
		return
	}
	key := c.PostForm("key")
	p, ok := apikey.Principal{}, false
	if key != "" && len(key) <= maxKeyLen {
		p, ok = a.o.Keys.Authenticate(key)
	}
	switch {
	case !ok:
		a.log(c).InfoContext(ctx, "console sign-in refused", "via", viaKey, "reason", "unknown key")
		d.Error = a.pages.T(c, "auth.error.wrong")
		a.pages.Render(c, http.StatusUnauthorized, "sign-in", d)
		return
	case !consoleRole(p.Role):
		a.log(c).InfoContext(ctx, "console sign-in refused", "via", viaKey, "reason", "role has no console", "principal", p.Name, "role", p.Role)
		d.Error = a.pages.T(c, "auth.error.role")
		a.pages.Render(c, http.StatusForbidden, "sign-in", d)
		return
	}
	if err := a.signIn(c, p, viaKey); err != nil {
		a.storeFailed(c, err)
		return
	}
	a.log(c).InfoContext(ctx, "console signed in", "via", viaKey, "principal", p.Name, "role", p.Role)
	c.Redirect(http.StatusSeeOther, d.Next)
}

// signOut ends the browser's session (its CSRF token checked first: a
// page of another site cannot sign anyone out) and shows the sign-in page.
func (a *Auth) signOut(c *gin.Context) {
	ctx := c.Request.Context()
	s, hash, ok, _, err := a.load(c, false)
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	if ok {
		webkit.BindCSRF(c, hash)
	}
	if !a.o.Kit.CSRFValid(c) {
		a.pages.Error(c, http.StatusForbidden, "common.csrf.title", "common.csrf.message")
		return
	}
	if ok {
		if err := a.destroy(ctx, hash); err != nil {
			a.storeFailed(c, err)
			return
		}
		a.log(c).InfoContext(ctx, "console signed out", "principal", s.Name)
	}
	a.clearCookie(c)
	c.Redirect(http.StatusSeeOther, SignInPath+"?reason="+endSignOut)
}

// allow counts a sign-in try of the client address; over the limit it
// answers 429 (the form again when form is not nil) and returns false.
func (a *Auth) allow(c *gin.Context, form *signInData) bool {
	ok, wait, err := a.tries.try(c.Request.Context(), c.ClientIP())
	if err != nil {
		a.storeFailed(c, err)
		return false
	}
	if ok {
		return true
	}
	secs := int(math.Ceil(wait.Seconds()))
	c.Header("Retry-After", strconv.Itoa(secs))
	a.log(c).WarnContext(c.Request.Context(), "console sign-in refused", "reason", "too many tries")
	if form == nil {
		a.pages.Error(c, http.StatusTooManyRequests, "auth.limited.title", "auth.limited.message")
		return false
	}
	form.Error = a.pages.T(c, "auth.error.limited", secs)
	a.pages.Render(c, http.StatusTooManyRequests, "sign-in", *form)
	c.Abort()
	return false
}

// refuse ends a sign-in with the provider that is not this browser's, is
// expired or replayed, or that the provider refused.
func (a *Auth) refuse(c *gin.Context, reason string) {
	a.log(c).InfoContext(c.Request.Context(), "console sign-in refused", "via", viaOIDC, "reason", reason)
	a.pages.Error(c, http.StatusForbidden, "auth.oidc.refused.title", "auth.oidc.refused.message")
}

// storeFailed answers 503 when Redis fails: nothing was decided.
func (a *Auth) storeFailed(c *gin.Context, err error) {
	a.log(c).ErrorContext(c.Request.Context(), "console sessions unavailable", "error", err)
	c.Header("Retry-After", "5")
	a.pages.Error(c, http.StatusServiceUnavailable, "common.error.title", "common.error.message")
}
