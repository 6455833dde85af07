package consoleauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
)

// CookieName is the console's session cookie. It holds the session's id:
// 32 random bytes, base64url without padding (43 characters).
const CookieName = "dsar_console"

// cookiePath is where the browser sends the session cookie: the console only.
const cookiePath = "/console"

const idLen = 43 // base64url of 32 bytes, unpadded

// How a session was signed in (session.Via).
const (
	viaKey  = "key"
	viaOIDC = "oidc"
)

// session is what Redis keeps of a signed-in browser, under
// Prefix+"session:"+hex(sha256(id)): never the id itself, so a read of
// Redis does not hand out sessions.
type session struct {
	Name    string      `json:"name"`
	Role    apikey.Role `json:"role"`
	Via     string      `json:"via"`
	Created time.Time   `json:"created"`
	Seen    time.Time   `json:"seen"`
	// Key, for an API key's session, is a digest of the key's hash: a key
	// given a new secret under the same name ends the sessions of the old.
	Key string `json:"key,omitempty"`
}

// keyDigest is what a session keeps of the API key it was signed in with.
func keyDigest(k apikey.Key) string {
	h := sha256.Sum256(append([]byte("dsar console session key v1\x00"), k.Hash[:]...))
	return hex.EncodeToString(h[:16])
}

func (s session) principal() apikey.Principal { return apikey.Principal{Name: s.Name, Role: s.Role} }

// Why a session that was presented is not (or no longer) valid; the
// sign-in page says so.
const (
	endNone    = ""        // no session cookie, or one Redis does not know
	endIdle    = "idle"    // unused for IdleTimeout
	endAge     = "age"     // older than MaxAge
	endRevoked = "revoked" // its key was removed or its role changed
	endSignOut = "signout" // signed out
)

// errStore is Redis failing: the page says to try again, the session is
// neither refused nor created.
var errStore = errors.New("session store")

// newID returns a new session id.
func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// wellFormed reports whether v could be an id newID made: anything else
// (a forged, truncated or huge cookie) is no session, without asking Redis.
func wellFormed(v string) bool {
	if len(v) != idLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// hashID is the key part and CSRF binding of a session id.
func hashID(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

func (a *Auth) sessionKey(hash string) string { return a.o.Prefix + "session:" + hash }

// ttl is how long Redis keeps s from now: the idle timeout, cut short by
// the session's maximum age.
func (a *Auth) ttl(s session, now time.Time) time.Duration {
	return min(a.o.IdleTimeout, s.Created.Add(a.o.MaxAge).Sub(now))
}

// create stores a new session for p and returns its id.
func (a *Auth) create(ctx context.Context, p apikey.Principal, via string) (string, error) {
	now := a.now()
	s := session{Name: p.Name, Role: p.Role, Via: via, Created: now, Seen: now}
	if k, ok := a.o.Keys.Lookup(p.Name); ok && via == viaKey {
		s.Key = keyDigest(k)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errStore, err)
	}
	id := newID()
	ok, err := a.o.Redis.SetNX(ctx, a.sessionKey(hashID(id)), b, a.ttl(s, now)).Result()
	if err != nil {
		return "", fmt.Errorf("%w: create: %w", errStore, err)
	}
	if !ok { // 256 random bits collided: never
		return "", fmt.Errorf("%w: create: id taken", errStore)
	}
	return id, nil
}

// load returns the session of the exchange's cookie and its hashed id,
// refreshing its idle timeout (touch) when it is valid. ok false is no valid
// session, with why it ended (endNone when there was none to speak of).
// A session past its idle timeout or age, or whose key no longer holds its
// role, is deleted here.
func (a *Auth) load(c *gin.Context, touch bool) (s session, hash string, ok bool, end string, err error) {
	id, cerr := c.Cookie(CookieName)
	if cerr != nil || id == "" {
		return session{}, "", false, endNone, nil
	}
	if !wellFormed(id) {
		// A forged or mangled cookie is worth no look-up, and says nothing
		// about a past session.
		return session{}, "", false, endNone, nil
	}
	ctx := c.Request.Context()
	hash = hashID(id)
	key := a.sessionKey(hash)
	b, err := a.o.Redis.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		// The browser holds a well-formed session cookie that Redis let
		// expire: it was left idle (a session past MaxAge is deleted when
		// seen; one ended otherwise had its cookie removed).
		return session{}, hash, false, endIdle, nil
	}
	if err != nil {
		return session{}, hash, false, endNone, fmt.Errorf("%w: read: %w", errStore, err)
	}
	if err := json.Unmarshal(b, &s); err != nil || s.Name == "" {
		_ = a.o.Redis.Del(ctx, key).Err()
		return session{}, hash, false, endNone, nil
	}
	now := a.now()
	end = ""
	switch {
	case s.Created.Add(a.o.MaxAge).Sub(now) < time.Second: // less is no TTL Redis takes
		end = endAge
	case now.Sub(s.Seen) >= a.o.IdleTimeout:
		end = endIdle
	case !a.stillHolds(s):
		end = endRevoked
	}
	if end != "" {
		if err := a.o.Redis.Del(ctx, key).Err(); err != nil {
			return session{}, hash, false, endNone, fmt.Errorf("%w: delete: %w", errStore, err)
		}
		return session{}, hash, false, end, nil
	}
	if touch {
		s.Seen = now
		nb, _ := json.Marshal(s)
		// XX: only while it exists, so a request in flight while the
		// session is signed out cannot bring it back.
		kept, err := a.o.Redis.SetXX(ctx, key, nb, a.ttl(s, now)).Result()
		if err != nil {
			return session{}, hash, false, endNone, fmt.Errorf("%w: refresh: %w", errStore, err)
		}
		if !kept {
			return session{}, hash, false, endSignOut, nil
		}
	}
	return s, hash, true, "", nil
}

// stillHolds reports whether the session's principal may still use the
// console: an API key's session while the keyring has that key (name and
// secret) with that role, an OIDC one while OIDC is configured; neither
// for a role without a console.
func (a *Auth) stillHolds(s session) bool {
	if !consoleRole(s.Role) {
		return false
	}
	switch s.Via {
	case viaKey:
		k, ok := a.o.Keys.Lookup(s.Name)
		return ok && k.Role == s.Role && subtle.ConstantTimeCompare([]byte(keyDigest(k)), []byte(s.Key)) == 1
	case viaOIDC:
		return a.oidc != nil
	}
	return false
}

// consoleRole reports whether r may use the console: every role but the
// pipeline's.
func consoleRole(r apikey.Role) bool {
	return r == apikey.RoleAdmin || r == apikey.RoleAgent || r == apikey.RoleAuditor
}

// destroy deletes the session of hash.
func (a *Auth) destroy(ctx context.Context, hash string) error {
	if err := a.o.Redis.Del(ctx, a.sessionKey(hash)).Err(); err != nil {
		return fmt.Errorf("%w: delete: %w", errStore, err)
	}
	return nil
}

// setCookie gives the browser the session id; it lasts no longer than the
// session may.
func (a *Auth) setCookie(c *gin.Context, id string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: CookieName, Value: id, Path: cookiePath, MaxAge: int(a.o.MaxAge.Seconds()),
		HttpOnly: true, Secure: webkit.SecureCookies(c.Request), SameSite: http.SameSiteStrictMode})
}

// clearCookie removes the session cookie from the browser.
func (a *Auth) clearCookie(c *gin.Context) {
	http.SetCookie(c.Writer, &http.Cookie{Name: CookieName, Value: "", Path: cookiePath, MaxAge: -1,
		HttpOnly: true, Secure: webkit.SecureCookies(c.Request), SameSite: http.SameSiteStrictMode})
}

// signIn starts a new session for p: a new id every time (a cookie set
// before sign-in, by anyone, is never the session after it), the browser's
// previous session, if any, deleted.
func (a *Auth) signIn(c *gin.Context, p apikey.Principal, via string) error {
	ctx := c.Request.Context()
	if old, err := c.Cookie(CookieName); err == nil && wellFormed(old) {
		if err := a.destroy(ctx, hashID(old)); err != nil {
			return err
		}
	}
	id, err := a.create(ctx, p, via)
	if err != nil {
		return err
	}
	a.setCookie(c, id)
	return nil
}
