package httpkit

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// StrictTransport sends Strict-Transport-Security with maxAge on answers
// that travel over TLS: every answer when behindTLSProxy (the proxy in
// front terminates TLS; browsers ignore the header on a plain-HTTP answer,
// RFC 6797 section 8.1), else those on a TLS connection of the server's
// own. maxAge 0 sends none. It does not add includeSubDomains: the
// business's other hosts are not dsar's to pin.
func StrictTransport(maxAge time.Duration, behindTLSProxy bool) gin.HandlerFunc {
	value := "max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)
	return func(c *gin.Context) {
		if maxAge > 0 && (behindTLSProxy || c.Request.TLS != nil) {
			c.Header("Strict-Transport-Security", value)
		}
		c.Next()
	}
}

// The CORS answers of the portal API: what a page of an allowed origin may
// send and read.
const (
	corsMethods = "GET, POST, PUT"
	corsHeaders = "Authorization, Content-Type, X-Request-Id"
	corsExpose  = "Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, Content-Disposition, WWW-Authenticate, X-Request-Id"
	corsMaxAge  = "600"
)

// CORS lets pages of origins (scheme://host[:port], lower case) call the
// routes under prefix from a browser, and no others: a preflight
// (OPTIONS with Access-Control-Request-Method) from a listed origin for
// GET, POST or PUT is answered 204 with the methods and headers allowed
// (Authorization carries the status token; no cookies are involved, so
// credentials are not allowed); from any other origin, or for another
// method, 403 without CORS headers. Other requests from a listed origin
// get Access-Control-Allow-Origin and the headers they may read. Answers
// under prefix vary by Origin. Routes outside prefix are left alone.
func CORS(prefix string, origins []string) gin.HandlerFunc {
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		allowed[strings.ToLower(o)] = true
	}
	return func(c *gin.Context) {
		path := c.Request.URL.Path
		if path != prefix && !strings.HasPrefix(path, prefix+"/") {
			c.Next()
			return
		}
		h := c.Writer.Header()
		h.Add("Vary", "Origin")
		origin := c.GetHeader("Origin")
		ok := origin != "" && allowed[strings.ToLower(origin)]
		if c.Request.Method == http.MethodOptions && origin != "" && c.GetHeader("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			switch c.GetHeader("Access-Control-Request-Method") {
			case http.MethodGet, http.MethodPost, http.MethodPut:
			default:
				ok = false
			}
			if !ok {
				Abort(c, Problem{Status: http.StatusForbidden, Detail: "Pages of this origin may not call this API from a browser."})
				return
			}
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Methods", corsMethods)
			h.Set("Access-Control-Allow-Headers", corsHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		if ok {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", corsExpose)
		}
		c.Next()
	}
}
