package consoleauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
)

// stateCookie binds a sign-in with the provider to the browser that
// started it: it holds the state the provider sends back.
const stateCookie = "dsar_oidc"

// stateTTL is how long a sign-in with the provider may take.
const stateTTL = 10 * time.Minute

// oidcTimeout bounds each call to the provider.
const oidcTimeout = 10 * time.Second

// provider is the discovered OpenID Connect provider.
type provider struct {
	cfg      OIDCConfig
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	client   *http.Client
}

// rank orders the console roles: when the role claim maps to several, the
// session takes the one that may do the most. The order of groups in a
// token is the provider's and means nothing, so "the first" would be
// arbitrary; a person put in an admin group is meant to be an admin.
var rank = map[apikey.Role]int{apikey.RoleAuditor: 1, apikey.RoleAgent: 2, apikey.RoleAdmin: 3}

// discover finds the provider of cfg (its discovery document must answer).
// The scopes asked for are openid, and the role claim's name when the
// provider lists it among its scopes (as many do for "groups").
func discover(ctx context.Context, cfg OIDCConfig, now func() time.Time) (*provider, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("oidc: issuer, client id and redirect URL are required")
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = "groups"
	}
	client := &http.Client{Timeout: oidcTimeout}
	pctx := oidc.ClientContext(context.Background(), client)
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), oidcTimeout)
	defer cancel()
	p, err := oidc.NewProvider(dctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discover %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		Scopes []string `json:"scopes_supported"`
	}
	_ = p.Claims(&meta)
	scopes := []string{oidc.ScopeOpenID}
	if slices.Contains(meta.Scopes, cfg.RoleClaim) {
		scopes = append(scopes, cfg.RoleClaim)
	}
	return &provider{
		cfg: cfg,
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
			Endpoint: p.Endpoint(), Scopes: scopes},
		verifier: p.VerifierContext(pctx, &oidc.Config{ClientID: cfg.ClientID, Now: now}),
		client:   client,
	}, nil
}

// pending is a sign-in with the provider under way, kept in Redis under
// Prefix+"oidc:"+hex(sha256(state)) for stateTTL and taken (read and
// deleted at once) by the callback, so a state serves once.
type pending struct {
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Next     string `json:"next"`
}

func (a *Auth) pendingKey(state string) string {
	h := sha256.Sum256([]byte(state))
	return a.o.Prefix + "oidc:" + hex.EncodeToString(h[:])
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// oidcStart sends the browser to the provider: a new state, nonce and PKCE
// verifier kept server-side, the state also in a cookie of this browser.
func (a *Auth) oidcStart(c *gin.Context) {
	if !a.allow(c, nil) {
		return
	}
	ctx := c.Request.Context()
	state, p := random(), pending{Nonce: random(), Verifier: oauth2.GenerateVerifier(), Next: safeNext(c.Query("next"))}
	b, _ := json.Marshal(p)
	if err := a.o.Redis.Set(ctx, a.pendingKey(state), b, stateTTL).Err(); err != nil {
		a.storeFailed(c, err)
		return
	}
	// SameSite=Lax, not Strict: the provider sends the browser back to the
	// callback by a cross-site redirect, a top-level GET, on which a
	// browser sends Lax cookies and withholds Strict ones. The cookie only
	// names the state; it is no session, lives as long as the state and is
	// sent to /console/oidc only.
	http.SetCookie(c.Writer, &http.Cookie{Name: stateCookie, Value: state, Path: "/console/oidc", MaxAge: int(stateTTL.Seconds()),
		HttpOnly: true, Secure: webkit.SecureCookies(c.Request), SameSite: http.SameSiteLaxMode})
	c.Redirect(http.StatusFound, a.oidc.oauth.AuthCodeURL(state, oidc.Nonce(p.Nonce), oauth2.S256ChallengeOption(p.Verifier)))
}

// oidcCallback finishes a sign-in with the provider: the state must be the
// one this browser started (its cookie) and not used before; the code is
// exchanged with the PKCE verifier; the ID token must verify (issuer,
// audience, expiry, signature) and carry the nonce; its role claim must map
// to a console role. Then the browser gets a session as with a key.
func (a *Auth) oidcCallback(c *gin.Context) {
	state, code, refused := c.Query("state"), c.Query("code"), c.Query("error")
	// The pages rendered here link to this URL (the language switch): not
	// with the code and state in it.
	c.Request.URL.RawQuery = ""
	cookie, _ := c.Cookie(stateCookie)
	http.SetCookie(c.Writer, &http.Cookie{Name: stateCookie, Value: "", Path: "/console/oidc", MaxAge: -1,
		HttpOnly: true, Secure: webkit.SecureCookies(c.Request), SameSite: http.SameSiteLaxMode})
	if state == "" || len(state) > 128 || !hmac.Equal([]byte(state), []byte(cookie)) {
		a.refuse(c, "state not this browser's")
		return
	}
	ctx := c.Request.Context()
	b, err := a.o.Redis.GetDel(ctx, a.pendingKey(state)).Bytes()
	if errors.Is(err, redis.Nil) {
		a.refuse(c, "state unknown, expired or used")
		return
	}
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	var p pending
	if err := json.Unmarshal(b, &p); err != nil {
		a.refuse(c, "state unreadable")
		return
	}
	if refused != "" {
		a.refuse(c, "provider refused")
		return
	}
	if code == "" {
		a.refuse(c, "no code")
		return
	}
	principal, err := a.oidc.principal(ctx, code, p)
	if errors.Is(err, errNoRole) {
		a.log(c).InfoContext(ctx, "console sign-in refused", "via", viaOIDC, "reason", "no console role", "principal", principal.Name)
		a.pages.Error(c, http.StatusForbidden, "auth.oidc.norole.title", "auth.oidc.norole.message")
		return
	}
	if err != nil {
		a.log(c).WarnContext(ctx, "console sign-in refused", "via", viaOIDC, "reason", "token", "error", err)
		a.pages.Error(c, http.StatusForbidden, "auth.oidc.refused.title", "auth.oidc.refused.message")
		return
	}
	if err := a.signIn(c, principal, viaOIDC); err != nil {
		a.storeFailed(c, err)
		return
	}
	a.log(c).InfoContext(ctx, "console signed in", "via", viaOIDC, "principal", principal.Name, "role", principal.Role)
	// The browser came here from the provider's site: a redirect now would
	// be part of that cross-site navigation, and the browser would withhold
	// the SameSite=Strict session cookie from it. A page of ours that goes
	// on by itself (Refresh) starts a same-site navigation that carries it;
	// its link is there for a browser that does not refresh.
	c.Header("Refresh", "0; url="+p.Next)
	httpkit.SetPrincipal(c, principal)
	a.pages.Render(c, http.StatusOK, "signed-in", struct{ Next string }{p.Next})
}

// errNoRole is an ID token whose role claim maps to no console role.
var errNoRole = errors.New("no console role")

// principal exchanges code for tokens and returns who the ID token names:
// "oidc:"+sub (never an email: the name goes to logs and audit trails),
// with the role its claim maps to.
func (p *provider) principal(ctx context.Context, code string, pd pending) (apikey.Principal, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*oidcTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.client)
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(pd.Verifier))
	var refused *oauth2.RetrieveError
	if errors.As(err, &refused) {
		// Its body is the provider's to fill: only its code is logged.
		return apikey.Principal{}, fmt.Errorf("exchange code: provider answered %d %q", refused.Response.StatusCode, refused.ErrorCode)
	}
	if err != nil {
		return apikey.Principal{}, fmt.Errorf("exchange code: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return apikey.Principal{}, errors.New("no id token")
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return apikey.Principal{}, fmt.Errorf("verify id token: %w", err)
	}
	if !hmac.Equal([]byte(idt.Nonce), []byte(pd.Nonce)) {
		return apikey.Principal{}, errors.New("id token nonce is not the one sent")
	}
	if idt.Subject == "" || len(idt.Subject) > 255 || strings.ContainsFunc(idt.Subject, unicode.IsControl) {
		return apikey.Principal{}, errors.New("id token subject empty, over 255 bytes or with control characters")
	}
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return apikey.Principal{}, fmt.Errorf("id token claims: %w", err)
	}
	pr := apikey.Principal{Name: "oidc:" + idt.Subject, Role: p.role(claims[p.cfg.RoleClaim])}
	if pr.Role == "" {
		return pr, errNoRole
	}
	return pr, nil
}

// role maps the role claim (a string or a list of strings) to the console
// role of highest rank among the values Roles maps; "" when none maps to a
// console role (the pipeline's has none).
func (p *provider) role(claim json.RawMessage) apikey.Role {
	var values []string
	if err := json.Unmarshal(claim, &values); err != nil {
		var one string
		if json.Unmarshal(claim, &one) != nil {
			return ""
		}
		values = []string{one}
	}
	var best apikey.Role
	for _, v := range values {
		if r := p.cfg.Roles[v]; rank[r] > rank[best] {
			best = r
		}
	}
	return best
}
