package handlers

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// Role is what a caller may do.
type Role string

// The roles.
const (
	RoleAdmin   Role = "admin"
	RoleAgent   Role = "agent"
	RoleAuditor Role = "auditor"
)

// Principal is an authenticated caller.
type Principal struct {
	Name string
	Role Role
}

// Key is one API key as configured: only the SHA-256 of its secret.
type Key struct {
	Name string
	Role Role
	Hash [32]byte
}

// Keyring authenticates bearer API keys. Secrets are never held, only their
// SHA-256, and compared in constant time.
type Keyring struct {
	keys []Key
}

// NewKeyring returns a keyring of keys.
func NewKeyring(keys ...Key) *Keyring {
	return &Keyring{keys: append([]Key(nil), keys...)}
}

// hasAgent reports whether name is a key that may work on requests.
func (k *Keyring) hasAgent(name string) bool {
	for _, key := range k.keys {
		if key.Name == name && (key.Role == RoleAgent || key.Role == RoleAdmin) {
			return true
		}
	}
	return false
}

// Authenticate returns the principal holding secret.
func (k *Keyring) Authenticate(secret string) (Principal, bool) {
	h := sha256.Sum256([]byte(secret))
	var found Principal
	ok := false
	for _, key := range k.keys { // no early exit: time does not depend on which key matched
		if subtle.ConstantTimeCompare(h[:], key.Hash[:]) == 1 {
			found, ok = Principal{Name: key.Name, Role: key.Role}, true
		}
	}
	return found, ok
}

const principalKey = "dsar.principal"

// requireKey authenticates "Authorization: Bearer <key>" and stores the
// principal; a missing or unknown key is a 401.
func requireKey(keys *Keyring) gin.HandlerFunc {
	return func(c *gin.Context) {
		scheme, secret, _ := strings.Cut(c.GetHeader("Authorization"), " ")
		p, ok := Principal{}, false
		if strings.EqualFold(scheme, "Bearer") && secret != "" {
			p, ok = keys.Authenticate(strings.TrimSpace(secret))
		}
		if !ok {
			c.Header("WWW-Authenticate", `Bearer realm="dsar"`)
			problem(c, Problem{Status: http.StatusUnauthorized, Detail: "Send a valid API key as Authorization: Bearer <key>."})
			return
		}
		c.Set(principalKey, p)
		c.Next()
	}
}

// requireRole lets through only callers holding one of roles.
func requireRole(roles ...Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := principal(c)
		for _, r := range roles {
			if p.Role == r {
				c.Next()
				return
			}
		}
		problem(c, Problem{Status: http.StatusForbidden, Detail: "This API key's role may not do this."})
	}
}

// caller names who made the HTTP call, for logs: the API key's name, or
// "subject" on the portal.
func caller(c *gin.Context) string {
	if p := principal(c); p.Name != "" {
		return p.Name
	}
	return "subject"
}

func principal(c *gin.Context) Principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(Principal)
	return pr
}
