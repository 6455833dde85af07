// Package consoleauth is the agent console's sign-in: with an API key of
// the agent, admin or auditor role, or with OpenID Connect when configured;
// sessions kept in Redis, ended by sign-out, idleness or age; the session
// cookie HttpOnly, SameSite=Strict and Secure outside loopback.
package consoleauth

import (
	"context"
	"embed"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
)

//go:embed templates messages
var files embed.FS

// OIDCConfig is the OpenID Connect provider agents may sign in with.
type OIDCConfig struct {
	Issuer, ClientID, ClientSecret string
	// RedirectURL is this service's callback: <public URL>/console/oidc/callback.
	RedirectURL string
	// RoleClaim names the ID token's claim holding the groups (or roles)
	// that Roles maps to a console role.
	RoleClaim string
	Roles     map[string]apikey.Role
}

// Options configure the sign-in. Kit, Keys, Redis and Log are required.
type Options struct {
	Kit   *webkit.Kit
	Keys  *apikey.Keyring
	Redis redis.UniversalClient
	// Prefix starts every Redis key of the sessions.
	Prefix      string
	IdleTimeout time.Duration
	MaxAge      time.Duration
	// OIDC nil: API keys only.
	OIDC *OIDCConfig
	Log  *slog.Logger
	Now  func() time.Time
}

// Auth is the console's sign-in and its sessions.
type Auth struct {
	o     Options
	pages *webkit.Pages
}

// New returns the sign-in; with OIDC it discovers the issuer.
func New(ctx context.Context, o Options) (*Auth, error) {
	return &Auth{o: o, pages: o.Kit.Parse(files, "console", "/console")}, nil
}

// Register adds /console/sign-in to r.
func (a *Auth) Register(r *gin.Engine) {
	r.GET("/console/sign-in", a.o.Kit.Headers(), func(c *gin.Context) { a.pages.Render(c, http.StatusOK, "sign-in", nil) })
}

// Require lets no one through yet.
func (a *Auth) Require() gin.HandlerFunc {
	return func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/console/sign-in"); c.Abort() }
}
