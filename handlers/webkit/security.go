package webkit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// Headers sets the pages' security headers: a Content-Security-Policy that
// allows only this origin's scripts, styles, images (and the logo's
// origin), fonts, fetches and form targets, with no inline script or
// style, no framing (frame-ancestors 'none', X-Frame-Options DENY) and no
// <base>; no referrer; a same-origin opener; nothing cached (pages show
// personal data, tokens and forms). Every page route uses it.
func (k *Kit) Headers() gin.HandlerFunc {
	img := "'self' data:"
	if o := k.brand.logoOrigin(); o != "" {
		img += " " + o
	}
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; img-src " + img +
		"; font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
		h.Set("Cache-Control", "no-store")
		c.Next()
	}
}

// CSRFCookie holds the random value a browser's form tokens are bound to.
const CSRFCookie = "dsar_csrf"

// CSRFField is the form field that carries the token.
const CSRFField = "csrf"

// csrfBindingKey is where a surface puts what its tokens are also bound to
// (the console's session), see BindCSRF.
const csrfBindingKey = "dsar.csrf_binding"

// BindCSRF binds the exchange's form tokens to v as well as to the
// browser's cookie: the console binds them to its session, so a token from
// before a sign-in is worth nothing after it.
func BindCSRF(c *gin.Context, v string) { c.Set(csrfBindingKey, v) }

// CSRF returns the token the exchange's forms must send (as CSRFField):
// an HMAC of the browser's CSRF cookie (set here when missing) and of the
// binding, so a page of another site can neither read nor forge it.
func (k *Kit) CSRF(c *gin.Context) string {
	v, err := c.Cookie(CSRFCookie)
	if err != nil || len(v) != 43 {
		if set, ok := c.Get(CSRFCookie); ok {
			v = set.(string)
		} else {
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			v = base64.RawURLEncoding.EncodeToString(b)
			c.Set(CSRFCookie, v)
			http.SetCookie(c.Writer, &http.Cookie{Name: CSRFCookie, Value: v, Path: "/", HttpOnly: true,
				Secure: SecureCookies(c.Request), SameSite: http.SameSiteStrictMode})
		}
	}
	return k.token(k.csrfKeys[0], v, c.GetString(csrfBindingKey))
}

func (k *Kit) token(key []byte, cookie, binding string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(cookie))
	m.Write([]byte{0})
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CSRFValid reports whether an unsafe request (POST, ...) comes from a form
// of this service: not cross-site by the browser's Sec-Fetch-Site or
// Origin, and carrying the token of its CSRF cookie and binding. Safe
// methods are always valid.
func (k *Kit) CSRFValid(c *gin.Context) bool {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	if s := c.GetHeader("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	if o := c.GetHeader("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, c.Request.Host) {
			return false
		}
	}
	v, err := c.Cookie(CSRFCookie)
	if err != nil || v == "" {
		return false
	}
	return k.tokenValid(c.PostForm(CSRFField), v, c.GetString(csrfBindingKey))
}

// tokenValid reports whether got is the form token of cookie and binding
// under one of the kit's keys: the current, or one it replaced (a form
// served before the key changed).
func (k *Kit) tokenValid(got, cookie, binding string) bool {
	ok := false
	for _, key := range k.csrfKeys {
		ok = hmac.Equal([]byte(got), []byte(k.token(key, cookie, binding))) || ok
	}
	return ok
}

// CheckCSRF refuses, with the error page and 403, an unsafe request that
// CSRFValid does not accept; nothing is changed.
func (p *Pages) CheckCSRF() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !p.kit.CSRFValid(c) {
			p.Error(c, http.StatusForbidden, "common.csrf.title", "common.csrf.message")
			return
		}
		c.Next()
	}
}
