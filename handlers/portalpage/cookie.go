package portalpage

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/webkit"
)

// CookieName is the portal's cookie: the requests this browser follows,
// each with its status token.
const CookieName = "dsar_portal"

// maxFollowed is how many requests the cookie holds; the oldest goes first.
const maxFollowed = 5

// cookieMaxAge keeps the cookie a year: a request can take months.
const cookieMaxAge = 365 * 24 * 3600

// followed is one request the browser follows: its id and status token.
type followed struct{ id, token string }

// validToken reports whether s has the form of a status token (or of an
// emailed link's token): base64url, at most 100 characters.
func validToken(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// readCookie returns the requests the cookie holds, newest first; pairs
// that are not an id and a token are dropped.
func readCookie(c *gin.Context) []followed {
	v, err := c.Cookie(CookieName)
	if err != nil || len(v) > 1024 {
		return nil
	}
	var out []followed
	for _, pair := range strings.Split(v, "|") {
		id, token, ok := strings.Cut(pair, ":")
		if ok && dsr.ValidID(id) && validToken(token) && len(out) < maxFollowed {
			out = append(out, followed{id, token})
		}
	}
	return out
}

// tokenFor returns the status token the cookie holds for request id, or "".
func tokenFor(c *gin.Context, id string) string {
	for _, f := range readCookie(c) {
		if f.id == id {
			return f.token
		}
	}
	return ""
}

// follow adds requests to the cookie, first, keeping at most maxFollowed:
// HttpOnly, Secure but on loopback over plain HTTP, SameSite=Lax (a link
// from an email opens the status page with it), on /privacy only.
func follow(c *gin.Context, add ...followed) {
	list := make([]followed, 0, maxFollowed)
	for _, f := range add {
		if f.id != "" && validToken(f.token) {
			list = append(list, f)
		}
	}
	for _, f := range readCookie(c) {
		dup := false
		for _, a := range list {
			dup = dup || a.id == f.id
		}
		if !dup {
			list = append(list, f)
		}
	}
	if len(list) > maxFollowed {
		list = list[:maxFollowed]
	}
	pairs := make([]string, len(list))
	for i, f := range list {
		pairs[i] = f.id + ":" + f.token
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: CookieName, Value: strings.Join(pairs, "|"), Path: Home, MaxAge: cookieMaxAge,
		HttpOnly: true, Secure: webkit.SecureCookies(c.Request), SameSite: http.SameSiteLaxMode})
}
