package httpkit

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/internal/apikey"
)

const principalKey = "dsar.principal"

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header (the scheme in any case), and false when there is none.
func BearerToken(c *gin.Context) (string, bool) {
	scheme, token, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	token = strings.TrimSpace(token)
	return token, strings.EqualFold(scheme, "Bearer") && token != ""
}

// RequireKey authenticates "Authorization: Bearer <key>" against keys and
// stores the principal on the context; a missing or unknown key is a 401.
func RequireKey(keys *apikey.Keyring) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, ok := apikey.Principal{}, false
		if secret, given := BearerToken(c); given {
			p, ok = keys.Authenticate(secret)
		}
		if !ok {
			c.Header("WWW-Authenticate", `Bearer realm="dsar"`)
			Abort(c, Problem{Status: http.StatusUnauthorized, Detail: "Send a valid API key as Authorization: Bearer <key>."})
			return
		}
		c.Set(principalKey, p)
		c.Next()
	}
}

// RequireRole lets through only callers holding one of roles (after
// RequireKey); others get 403.
func RequireRole(roles ...apikey.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := PrincipalOf(c)
		for _, r := range roles {
			if p.Role == r {
				c.Next()
				return
			}
		}
		Abort(c, Problem{Status: http.StatusForbidden, Detail: "This API key's role may not do this."})
	}
}

// Caller names who made the HTTP call, for logs and audit: the API key's
// name, or "subject" on the portal.
func Caller(c *gin.Context) string {
	if p := PrincipalOf(c); p.Name != "" {
		return p.Name
	}
	return "subject"
}

// PrincipalOf returns the caller RequireKey authenticated; the zero
// Principal on routes without a key.
func PrincipalOf(c *gin.Context) apikey.Principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(apikey.Principal)
	return pr
}

// SetPrincipal stores p as the exchange's caller: what RequireKey does for
// an API key, for surfaces that authenticate otherwise (the console's
// session).
func SetPrincipal(c *gin.Context, p apikey.Principal) { c.Set(principalKey, p) }
